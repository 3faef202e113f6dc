"""What every `ofa-fleet` entry point shares: one-line errors and the exit codes.

Kept free of the commands themselves, so that an entry point with few commands imports
only what those need (`core_main`).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from typing import NoReturn

from ofa_fleet.cli.common_flags import apply_output_flag
from ofa_fleet.console.output import emit
from ofa_fleet.errors import OfaFleetError, ProblemsFoundError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_PROBLEMS_FOUND = 3

# What the base install (no [server] extra) is for, on Python 3.10 as well: a device.
DEVICE_COMMANDS = frozenset({"device", "config"})
SERVER_PYTHON = (3, 11)
# The [server] extra's libraries, by import name: a command that needs one says so.
SERVER_LIBRARIES = frozenset(
    {"torch", "ray", "sqlalchemy", "sklearn", "alembic", "psycopg", "scipy"} | {"matplotlib", "PIL"}
)
SERVER_INSTALL = "pip install 'ofa-fleet[server]'"


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes as one actionable line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"error: {self.prog}: {message} (see --help)\n")


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command: its result on stdout, any error as one
    line on stderr (set ``OFA_FLEET_DEBUG=1`` for the traceback of an unexpected one)."""
    args = parser.parse_args(argv)
    apply_output_flag(args)
    command = getattr(args, "command", "")
    if command not in DEVICE_COMMANDS and sys.version_info < SERVER_PYTHON:
        print(
            f"error: ofa-fleet {command} needs Python 3.11 or later, and this is "
            f"{platform.python_version()}; here ofa-fleet runs a device (ofa-fleet device run)",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    try:
        context_error = getattr(args, "context_error", None)  # see connection_flags
        if context_error is not None:
            raise context_error
        result = args.handler(args)
    except ProblemsFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS_FOUND
    except OfaFleetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("OFA_FLEET_DEBUG"):
            raise
        library = _missing_server_library(exc)
        if library:
            print(
                f"error: ofa-fleet {command} needs the servers' libraries ({library} is not "
                f"installed; this is a device's install): {SERVER_INSTALL}",
                file=sys.stderr,
            )
            return EXIT_USER_ERROR
        print(f"error: internal error ({type(exc).__name__}: {exc})", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    if result is not None:
        emit(result, getattr(args, "json", False), f"ofa-fleet {args.command}")
    return 0


def _missing_server_library(error: Exception) -> str:
    """The [server] library whose absence raised ``error``; "" for any other error."""
    if not isinstance(error, ModuleNotFoundError):
        return ""
    library = (error.name or "").partition(".")[0]
    return library if library in SERVER_LIBRARIES else ""
