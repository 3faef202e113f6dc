"""`ofa-fleet`: the single entry point; every error is one line on stderr, never a traceback.

Set ``OFA_FLEET_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from ofa_fleet.cli import (
    carbon_commands,
    carbon_report,
    config_commands,
    core_commands,
    demo_command,
    device_commands,
    fleet_commands,
    migrate_command,
    model_commands,
    predictor_commands,
    registry_commands,
    search_commands,
    serve_command,
    status_command,
    supernet_commands,
    up_command,
)
from ofa_fleet.cli.entry import OneLineParser, run


def installed_version() -> str:
    """The installed distribution's version (pyproject.toml's), or "unknown" when this
    code runs from a source tree that was never installed."""
    try:
        return metadata.version("ofa-fleet")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="ofa-fleet", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ofa-fleet {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    core_commands.add_commands(sub)
    demo_command.add_command(sub)
    device_commands.add_command(sub)
    model_commands.add_commands(sub)
    predictor_commands.add_commands(sub)
    supernet_commands.add_commands(sub)
    serve_command.add_command(sub)
    migrate_command.add_command(sub)
    fleet_commands.add_commands(registry_commands.add_commands(sub))
    search_commands.add_command(sub)
    up_command.add_command(sub)
    status_command.add_command(sub)
    config_commands.add_commands(sub)
    carbon_report.add_report_command(carbon_commands.add_commands(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
