"""Operator commands against a running registry or delivery: common flags, one client each.

Shared by `ofa-fleet profiles|fleet|devices ...`, `models ...` and `carbon report`, so
each names its service, the operator token, TLS and the deadline the same way, and runs
its handler with the service's typed client open for the command's duration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from grpc import aio

from ofa_fleet.cli.common_flags import add_json_flag, add_operator_token_flag
from ofa_fleet.cli.connection_flags import (
    add_endpoint_flags,
    add_tls_flags,
    operator_token_file,
    tls_files,
)
from ofa_fleet.serving.client import ErrorTranslation, open_aio_channel, remote_errors
from ofa_fleet.serving.credentials import load_operator_token
from ofa_fleet.serving.delivery_client import DeliveryClient
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.v1 import delivery_pb2_grpc, registry_pb2_grpc

Client = TypeVar("Client", RegistryClient, DeliveryClient)
Result = dict[str, Any] | None
RegistryHandler = Callable[[argparse.Namespace, RegistryClient], Awaitable[Result]]
DeliveryHandler = Callable[[argparse.Namespace, DeliveryClient], Awaitable[Result]]


@dataclass(frozen=True)
class _Service(Generic[Client]):
    """How a command names a service and opens its client on a channel."""

    flag: str  # --registry / --delivery (and the address's attribute)
    signer: str  # whose certificate --tls-ca checks
    client: Callable[[aio.Channel, str, float, ErrorTranslation], Client]


REGISTRY = _Service(
    "registry",
    "the registry's cert",
    lambda channel, token, timeout, errors: RegistryClient(
        registry_pb2_grpc.RegistryServiceStub(channel),
        token,
        deadline_seconds=timeout,
        errors=errors,
    ),
)
DELIVERY = _Service(
    "delivery",
    "delivery's cert",
    lambda channel, token, timeout, errors: DeliveryClient(
        delivery_pb2_grpc.DeliveryServiceStub(channel),
        token,
        deadline_seconds=timeout,
        errors=errors,
    ),
)


def add_registry_command(
    group: argparse._SubParsersAction, name: str, help: str, handler: RegistryHandler
) -> argparse.ArgumentParser:
    """A subcommand that awaits ``handler`` with a `RegistryClient` open for its duration."""
    return _add_command(group, name, help, REGISTRY, handler)


def add_delivery_command(
    group: argparse._SubParsersAction, name: str, help: str, handler: DeliveryHandler
) -> argparse.ArgumentParser:
    """A subcommand that awaits ``handler`` with a `DeliveryClient` open for its duration."""
    return _add_command(group, name, help, DELIVERY, handler)


def _add_command(
    group: argparse._SubParsersAction,
    name: str,
    help: str,
    service: _Service[Client],
    handler: Callable[[argparse.Namespace, Client], Awaitable[Result]],
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help)
    add_endpoint_flags(parser, service.flag)
    add_operator_token_flag(parser)
    add_tls_flags(parser, service.signer)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    add_json_flag(parser)
    parser.set_defaults(handler=lambda args: _run(args, service, handler))
    return parser


@contextlib.asynccontextmanager
async def delivery_client(args: argparse.Namespace) -> AsyncIterator[DeliveryClient]:
    """Delivery's client for a registry command that asks delivery too (`--delivery`, the
    same token, TLS files and deadline as its registry calls)."""
    token = load_operator_token(operator_token_file(args))
    address = args.delivery
    channel = open_aio_channel(address, tls_files(args))
    try:
        yield DELIVERY.client(channel, token, args.timeout, remote_errors("delivery", address))
    finally:
        await channel.close(None)


def _run(
    args: argparse.Namespace,
    service: _Service[Client],
    handler: Callable[[argparse.Namespace, Client], Awaitable[Result]],
) -> Result:
    token = load_operator_token(operator_token_file(args))  # a missing token fails before I/O
    address = getattr(args, service.flag)
    tls = tls_files(args)

    async def session() -> Result:
        channel = open_aio_channel(address, tls)
        try:
            errors = remote_errors(service.flag, address)
            return await handler(args, service.client(channel, token, args.timeout, errors))
        finally:
            await channel.close(None)

    return asyncio.run(session())
