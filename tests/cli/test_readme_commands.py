"""The README's commands are the CLI's: every `ofa-fleet ...` it shows names commands that
exist and flags those commands take, so the reference cannot drift from `--help`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from ofa_fleet.cli.main import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def commands_in(text: str) -> list[str]:
    """Each `ofa-fleet ...` of the README: a code line (with its continuation lines), or
    an inline code span; comments cut off."""
    found: list[str] = []
    in_code = False
    pending = ""
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            stripped = pending + line.strip()
            if stripped.endswith("\\"):
                pending = stripped[:-1] + " "
                continue
            pending = ""
            if stripped.startswith("ofa-fleet "):
                found.append(stripped.split(" #", 1)[0])
        else:
            found += re.findall(r"`(ofa-fleet [^`]+)`", line)
    return found


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def resolve(command: str) -> tuple[str, argparse.ArgumentParser, str]:
    """The command's path, its parser, and the rest of the line (arguments and flags)."""
    parser = build_parser()
    words = command.split()
    path = ["ofa-fleet"]
    for word in words[1:]:
        nested = subcommands(parser)
        if word not in nested:
            break
        parser = nested[word]
        path.append(word)
    return " ".join(path), parser, " ".join(words[len(path) :])


COMMANDS = commands_in(README.read_text())


def test_the_readme_shows_the_commands_a_user_needs() -> None:
    shown = {resolve(c)[0] for c in COMMANDS}
    for needed in ("ofa-fleet demo", "ofa-fleet train", "ofa-fleet up", "ofa-fleet device run"):
        assert needed in shown


@pytest.mark.parametrize("command", COMMANDS)
def test_every_readme_command_and_flag_exists(command: str) -> None:
    path, parser, rest = resolve(command)
    assert path != "ofa-fleet" or rest.startswith("--"), f"no such command: {command}"
    if subcommands(parser) and rest and not rest.startswith(("-", "[", "|")):
        assert rest.split()[0] in subcommands(parser), f"no such command: {command}"
    unknown = [f for f in FLAG.findall(rest) if f not in parser._option_string_actions]
    assert unknown == [], f"{path} takes no {unknown}: {command}"
