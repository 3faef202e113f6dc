"""Delivery as operator commands reach it: the common flags and one client per command.

Shared by `ofa-fleet models ...` and `ofa-fleet carbon report`, so each names delivery,
the operator token, TLS and the deadline the same way.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ofa_fleet.cli.connection_flags import add_endpoint_flags, add_tls_flags, tls_files
from ofa_fleet.serving.client import call, open_channel
from ofa_fleet.serving.credentials import load_operator_token
from ofa_fleet.v1 import delivery_pb2_grpc


class Delivery:
    """Delivery as the CLI uses it: one channel, the operator token, a deadline."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.address = args.delivery
        self.token = load_operator_token(args.operator_token_file)
        tls = tls_files(args)
        self.channel = open_channel(self.address, tls)
        self.stub = delivery_pb2_grpc.DeliveryServiceStub(self.channel)
        self.timeout = args.timeout

    def __call__(self, method: str, request: object) -> Any:
        rpc = getattr(self.stub, method)
        return call("delivery", self.address, rpc, request, self.token, self.timeout)

    def close(self) -> None:
        self.channel.close()


Handler = Callable[[argparse.Namespace, Delivery], dict[str, Any] | None]


def add_delivery_command(
    group: argparse._SubParsersAction, name: str, help: str, handler: Handler
) -> argparse.ArgumentParser:
    """A subcommand that calls ``handler`` with a `Delivery` open for its duration."""
    parser = group.add_parser(name, help=help)
    add_endpoint_flags(parser, "delivery")
    parser.add_argument("--operator-token-file", type=Path)
    add_tls_flags(parser, "delivery's cert")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=lambda args: _run(args, handler))
    return parser


def _run(args: argparse.Namespace, handler: Handler) -> dict[str, Any] | None:
    delivery = Delivery(args)
    try:
        return handler(args, delivery)
    finally:
        delivery.close()
