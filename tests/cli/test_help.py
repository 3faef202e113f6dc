"""Every flag and argument of every command says what it is for in `--help`."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from ofa_fleet.cli.main import build_parser


def undocumented(parser: argparse.ArgumentParser, path: str) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub.prog.rsplit(" ", 1)[-1] == name:  # an alias shares its parser
                    yield from undocumented(sub, f"{path} {name}")
        elif isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        elif not action.help:
            yield f"{path} {(action.option_strings or [action.dest])[0]}"


def test_every_flag_has_help_text() -> None:
    assert list(undocumented(build_parser(), "ofa-fleet")) == []


def test_the_walk_sees_nested_commands_and_would_see_a_flag_without_help() -> None:
    parser = build_parser()
    seen = list(undocumented(parser, "ofa-fleet"))
    assert seen == []
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    devices = next(
        a for a in commands.choices["devices"]._actions if isinstance(a, argparse._SubParsersAction)
    )
    devices.choices["delete"].add_argument("--undocumented")
    assert list(undocumented(parser, "ofa-fleet")) == ["ofa-fleet devices delete --undocumented"]
