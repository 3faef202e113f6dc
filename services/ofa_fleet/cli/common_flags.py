"""Flags many commands share, defined once so that each says the same in `--help`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ofa_fleet.console.output import MACHINE_FORMATS, use_machine_format


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """``--json``, and ``-o/--output table|json|yaml`` as kubectl users type it."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the result as one JSON object on stdout (progress and tables go to stderr)",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", *MACHINE_FORMATS),
        help="table (the default), json (as --json) or yaml: the same fields as a YAML document",
    )


def apply_output_flag(args: argparse.Namespace) -> None:
    """``-o json|yaml`` is ``--json`` written in that format (`console.output`); set for
    every command run, so that one run's choice never outlives it."""
    output = getattr(args, "output", None)
    use_machine_format(output if output in MACHINE_FORMATS else "json")
    if output in MACHINE_FORMATS:
        args.json = True


def add_checkpoint_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="the supernet `ofa-fleet train` wrote"
    )


def add_operator_token_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--operator-token-file",
        type=Path,
        help="file holding the operator token (default: env OFA_FLEET_OPERATOR_TOKEN)",
    )


def add_log_level_flag(parser: argparse.ArgumentParser, default: str, *levels: str) -> None:
    parser.add_argument(
        "--log-level",
        default=default,
        choices=list(levels),
        help=f"least severe log lines written, as JSON on stderr (default {default})",
    )
