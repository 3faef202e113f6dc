"""Operator commands against a running registry or delivery: common flags, one client each.

Shared by `ofa-fleet profiles|fleet|devices ...`, `models ...` and `carbon report`, so
each names its service, the operator token, TLS and the deadline the same way, and runs
its handler with the service's typed client open for the command's duration.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from ofa_fleet.cli.connection_flags import add_endpoint_flags, add_tls_flags, tls_files
from ofa_fleet.serving.client import open_aio_channel, remote_errors
from ofa_fleet.serving.credentials import load_operator_token
from ofa_fleet.serving.delivery_client import DeliveryClient
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.v1 import delivery_pb2_grpc, registry_pb2_grpc

Client = TypeVar("Client", RegistryClient, DeliveryClient)
Result = dict[str, Any] | None
RegistryHandler = Callable[[argparse.Namespace, RegistryClient], Awaitable[Result]]
DeliveryHandler = Callable[[argparse.Namespace, DeliveryClient], Awaitable[Result]]


def add_registry_command(
    group: argparse._SubParsersAction, name: str, help: str, handler: RegistryHandler
) -> argparse.ArgumentParser:
    """A subcommand that awaits ``handler`` with a `RegistryClient` open for its duration."""
    parser = _add_command(group, name, help, "registry", "the registry's cert")

    def client(args: argparse.Namespace, channel: Any, token: str) -> RegistryClient:
        return RegistryClient(
            registry_pb2_grpc.RegistryServiceStub(channel),
            token,
            deadline_seconds=args.timeout,
            errors=remote_errors("registry", args.registry),
        )

    parser.set_defaults(handler=lambda args: _run(args, args.registry, client, handler))
    return parser


def add_delivery_command(
    group: argparse._SubParsersAction, name: str, help: str, handler: DeliveryHandler
) -> argparse.ArgumentParser:
    """A subcommand that awaits ``handler`` with a `DeliveryClient` open for its duration."""
    parser = _add_command(group, name, help, "delivery", "delivery's cert")

    def client(args: argparse.Namespace, channel: Any, token: str) -> DeliveryClient:
        return DeliveryClient(
            delivery_pb2_grpc.DeliveryServiceStub(channel),
            token,
            deadline_seconds=args.timeout,
            errors=remote_errors("delivery", args.delivery),
        )

    parser.set_defaults(handler=lambda args: _run(args, args.delivery, client, handler))
    return parser


def _add_command(
    group: argparse._SubParsersAction, name: str, help: str, service: str, signer: str
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help)
    add_endpoint_flags(parser, service)
    parser.add_argument("--operator-token-file", type=Path)
    add_tls_flags(parser, signer)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    parser.add_argument("--json", action="store_true")
    return parser


def _run(
    args: argparse.Namespace,
    address: str,
    make_client: Callable[[argparse.Namespace, Any, str], Client],
    handler: Callable[[argparse.Namespace, Client], Awaitable[Result]],
) -> Result:
    token = load_operator_token(args.operator_token_file)  # a missing token fails before I/O
    tls = tls_files(args)

    async def session() -> Result:
        channel = open_aio_channel(address, tls)
        try:
            return await handler(args, make_client(args, channel, token))
        finally:
            await channel.close(None)

    return asyncio.run(session())
