"""The registry as a service the shared bootstrap can run: store, feed, servicer, access."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from ofa_fleet.contract.heartbeat import DEFAULT_HEARTBEAT_SECONDS
from ofa_fleet.contract.resource_names import device_name
from ofa_fleet.contract.tokens import DEVICE_PREFIX, ENROLMENT_PREFIX
from ofa_fleet.errors import OfaFleetError
from ofa_fleet.registry.access_rules import RULES, SERVICE
from ofa_fleet.registry.change_feed import ChangeFeed
from ofa_fleet.registry.metrics import RegistryMetrics
from ofa_fleet.registry.records import ChangeKind, ChangeOperation
from ofa_fleet.registry.retention import DEFAULT_RETENTION_SECONDS
from ofa_fleet.registry.servicer import RegistryServicer
from ofa_fleet.registry.store import RegistryStore
from ofa_fleet.serving.access import OperatorAuthenticator, Principal, Role
from ofa_fleet.serving.server import Service
from ofa_fleet.serving.token_cache import TokenCache
from ofa_fleet.storage.database import Database
from ofa_fleet.v1 import registry_pb2_grpc

log = logging.getLogger("ofa_fleet.registry")


class RegistryTokens:
    """Device and enrolment tokens, looked up by digest in the registry's own tables."""

    def __init__(self, store: RegistryStore, cache: TokenCache) -> None:
        self.store = store
        self.cache = cache

    async def authenticate(self, token: str) -> Principal | None:
        principal = self.cache.get(token)
        if principal is not None:
            return principal
        if token.startswith(DEVICE_PREFIX):
            device = await asyncio.to_thread(self.store.device_for_token, token)
            principal = Principal(Role.DEVICE, device) if device else None
        elif token.startswith(ENROLMENT_PREFIX):
            fleet = await asyncio.to_thread(self.store.fleet_for_enrolment_token, token)
            principal = Principal(Role.ENROLMENT, fleet) if fleet else None
        if principal is not None:
            self.cache.put(token, principal)
        return principal


@dataclass(frozen=True)
class Registry:
    """The registry's parts: the bootstrap's `Service`, the store, the token checker."""

    service: Service
    store: RegistryStore
    tokens: RegistryTokens


def registry_service(
    database: Database,
    poll_seconds: float = 1.0,
    metrics: CollectorRegistry | None = None,
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
    change_retention_seconds: float = DEFAULT_RETENTION_SECONDS,
) -> Registry:
    """`metrics`: where the registry's own metrics go (the server's endpoint registry);
    `heartbeat_seconds`: the interval devices are told to heartbeat at;
    `change_retention_seconds`: how long the change feed holds a change."""
    store = RegistryStore(database)
    feed = ChangeFeed(store, poll_seconds=poll_seconds, retention_seconds=change_retention_seconds)
    tokens = RegistryTokens(store, TokenCache())
    servicer = RegistryServicer(
        store, feed, revoked=tokens.cache.forget, heartbeat_seconds=heartbeat_seconds
    )
    if metrics is not None:
        servicer.reported = RegistryMetrics(metrics, store).reported

    async def ready() -> bool:
        return await asyncio.to_thread(database.ping)

    return Registry(
        Service(
            name=SERVICE,
            register=lambda server: registry_pb2_grpc.add_RegistryServiceServicer_to_server(
                servicer, server
            ),
            rules=RULES,
            ready=ready,
            stopping=feed.close,
            background=lambda: _housekeeping(feed, tokens.cache),
        ),
        store,
        tokens,
    )


async def _housekeeping(feed: ChangeFeed, cache: TokenCache) -> None:
    """Prune the feed; and forget cached tokens of devices and fleets deleted on another
    replica at once (this replica's own deletions forget them in the call), rather than
    when the cache entry expires."""
    await asyncio.gather(feed.prune_forever(), _revoke_deleted(feed, cache))


async def _revoke_deleted(feed: ChangeFeed, cache: TokenCache) -> None:
    deletions = frozenset({ChangeOperation.DELETED})
    kinds = frozenset({ChangeKind.DEVICE, ChangeKind.FLEET})
    while True:
        try:
            async for change in feed.watch(0, kinds, deletions, from_head=True):
                # A device's principal is its name; an enrolment token's, its fleet.
                device = change.kind is ChangeKind.DEVICE
                cache.forget(
                    device_name(change.parent, change.entity_id) if device else change.entity_id
                )
            return  # the feed closed: the server is stopping
        except OfaFleetError as error:  # the database is away: deletions may be missed
            log.warning("token revocations interrupted", extra={"error": str(error)})
            cache.clear()
            await asyncio.sleep(1.0)


def registry_authenticator(operator_token: str, registry: Registry) -> OperatorAuthenticator:
    return OperatorAuthenticator(operator_token, [registry.tokens])
