"""Flags many commands share, defined once so that each says the same in `--help`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the result as one JSON object on stdout (progress and tables go to stderr)",
    )


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
