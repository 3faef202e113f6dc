"""What every `ofa-fleet` entry point shares: one-line errors and the exit codes.

Kept free of the commands themselves, so that an entry point with few commands imports
only what those need (`core_main`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ofa_fleet.cli.common_flags import apply_output_flag
from ofa_fleet.console.output import emit
from ofa_fleet.errors import OfaFleetError, ProblemsFoundError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_PROBLEMS_FOUND = 3


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes as one actionable line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"error: {self.prog}: {message} (see --help)\n")


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command: its result on stdout, any error as one
    line on stderr (set ``OFA_FLEET_DEBUG=1`` for the traceback of an unexpected one)."""
    args = parser.parse_args(argv)
    apply_output_flag(args)
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
        print(f"error: internal error ({type(exc).__name__}: {exc})", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    if result is not None:
        emit(result, getattr(args, "json", False), f"ofa-fleet {args.command}")
    return 0
