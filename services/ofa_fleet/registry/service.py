"""The registry as a service the shared bootstrap can run: store, feed, servicer, access."""

from __future__ import annotations

import asyncio

from ofa_fleet.registry.access_rules import RULES, SERVICE
from ofa_fleet.registry.change_feed import ChangeFeed
from ofa_fleet.registry.database import Database
from ofa_fleet.registry.servicer import RegistryServicer
from ofa_fleet.registry.store import RegistryStore
from ofa_fleet.registry.tokens import DEVICE_PREFIX, ENROLMENT_PREFIX
from ofa_fleet.serving.access import OperatorAuthenticator, Principal, Role
from ofa_fleet.serving.server import Service
from ofa_fleet.v1 import registry_pb2_grpc


class RegistryTokens:
    """Device and enrolment tokens, looked up by digest in the registry's own tables."""

    def __init__(self, store: RegistryStore) -> None:
        self.store = store

    async def authenticate(self, token: str) -> Principal | None:
        if token.startswith(DEVICE_PREFIX):
            device = await asyncio.to_thread(self.store.device_for_token, token)
            return Principal(Role.DEVICE, device) if device else None
        if token.startswith(ENROLMENT_PREFIX):
            fleet = await asyncio.to_thread(self.store.fleet_for_enrolment_token, token)
            return Principal(Role.ENROLMENT, fleet) if fleet else None
        return None


def registry_service(
    database: Database, poll_seconds: float = 1.0
) -> tuple[Service, RegistryStore]:
    """The registry's `Service` for the bootstrap, and its store for in-process callers."""
    store = RegistryStore(database)
    feed = ChangeFeed(store, poll_seconds=poll_seconds)
    servicer = RegistryServicer(store, feed)

    async def ready() -> bool:
        return await asyncio.to_thread(database.ping)

    return (
        Service(
            name=SERVICE,
            register=lambda server: registry_pb2_grpc.add_RegistryServiceServicer_to_server(
                servicer, server
            ),
            rules=RULES,
            ready=ready,
            stopping=feed.close,
        ),
        store,
    )


def registry_authenticator(operator_token: str, store: RegistryStore) -> OperatorAuthenticator:
    return OperatorAuthenticator(operator_token, [RegistryTokens(store)])
