"""Operator commands against a running registry or delivery: common flags, and the
Python client (`ofa_fleet.client`) a script would use.

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

from ofa_fleet.cli.common_flags import add_json_flag, add_operator_token_flag
from ofa_fleet.cli.connection_flags import (
    add_endpoint_flags,
    add_tls_flags,
    default_address,
    operator_token_file,
    tls_files,
)
from ofa_fleet.client import AsyncFleetClient, ClientSettings
from ofa_fleet.serving.credentials import load_operator_token
from ofa_fleet.serving.delivery_client import DeliveryClient
from ofa_fleet.serving.registry_client import RegistryClient

Client = TypeVar("Client", RegistryClient, DeliveryClient)
Result = dict[str, Any] | None
RegistryHandler = Callable[[argparse.Namespace, RegistryClient], Awaitable[Result]]
DeliveryHandler = Callable[[argparse.Namespace, DeliveryClient], Awaitable[Result]]


@dataclass(frozen=True)
class _Service(Generic[Client]):
    """How a command names a service and which of the Python client's clients it uses."""

    flag: str  # --registry / --delivery (and the address's attribute)
    signer: str  # whose certificate --tls-ca checks
    client: Callable[[AsyncFleetClient], Client]


REGISTRY = _Service("registry", "the registry's cert", lambda fleet: fleet.registry)
DELIVERY = _Service("delivery", "delivery's cert", lambda fleet: fleet.delivery)


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


def client_settings(args: argparse.Namespace) -> ClientSettings:
    """The command's connection flags (each already from its flag, environment variable
    or context) as the Python client's settings; a missing token fails here, before I/O."""
    return ClientSettings(
        registry=getattr(args, "registry", None) or default_address("registry"),
        delivery=getattr(args, "delivery", None) or default_address("delivery"),
        search=getattr(args, "search", None) or default_address("search"),
        token=load_operator_token(operator_token_file(args)),
        tls=tls_files(args),
        deadline_seconds=args.timeout,
    )


@contextlib.asynccontextmanager
async def delivery_client(args: argparse.Namespace) -> AsyncIterator[DeliveryClient]:
    """Delivery's client for a registry command that asks delivery too (`--delivery`, the
    same token, TLS files and deadline as its registry calls)."""
    async with AsyncFleetClient(client_settings(args)) as fleet:
        yield fleet.delivery


def _run(
    args: argparse.Namespace,
    service: _Service[Client],
    handler: Callable[[argparse.Namespace, Client], Awaitable[Result]],
) -> Result:
    settings = client_settings(args)

    async def session() -> Result:
        async with AsyncFleetClient(settings) as fleet:
            return await handler(args, service.client(fleet))

    return asyncio.run(session())
