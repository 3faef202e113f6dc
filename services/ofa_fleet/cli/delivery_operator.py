"""Delivery as operator commands reach it: the common flags and one client per command.

Shared by `ofa-fleet models ...` and `ofa-fleet carbon report`, so each names delivery,
the operator token, TLS and the deadline the same way.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ofa_fleet.serving.client import call, open_channel
from ofa_fleet.serving.credentials import load_operator_token
from ofa_fleet.serving.ports import DELIVERY_PORT
from ofa_fleet.serving.tls import TlsFiles
from ofa_fleet.v1 import delivery_pb2_grpc

DEFAULT_DELIVERY = f"127.0.0.1:{DELIVERY_PORT}"


class Delivery:
    """Delivery as the CLI uses it: one channel, the operator token, a deadline."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.address = args.delivery
        self.token = load_operator_token(args.operator_token_file)
        tls = TlsFiles(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca)
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
    parser.add_argument(
        "--delivery",
        default=os.environ.get("OFA_FLEET_DELIVERY", DEFAULT_DELIVERY),
        help=f"delivery address (env OFA_FLEET_DELIVERY; default {DEFAULT_DELIVERY})",
    )
    parser.add_argument("--operator-token-file", type=Path)
    parser.add_argument("--tls-ca", type=Path, help="PEM CA that signed delivery's cert")
    parser.add_argument("--tls-cert", type=Path, help="client certificate for mutual TLS")
    parser.add_argument("--tls-key", type=Path, help="key of --tls-cert")
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
