"""Which model a device should run: its fleet's rollout policy applied to the model store.

A device belongs to a fleet, a fleet has a profile and a rollout policy (in the
registry), and a profile has a current model (in the store). Fleets change rarely and a
booting fleet asks thousands of times in a minute, so fleet records are cached briefly
and dropped the moment the registry's change feed says a fleet changed (a new profile or
policy); while the feed is down, the cache's `FLEET_TTL_SECONDS` still bounds it. A
staged fleet's devices do not all run the same model: its `FleetTarget` says which
devices are canaries of its rollout (`delivery.rollout`).

A fleet's target is cached too, since every GetModelManifest asks for it: an entry
stands while the fleet's record is the one it was computed from and this replica has
committed no write since (`Database.committed_writes`), for at most
`TARGET_TTL_SECONDS`, which bounds how late another replica's change is seen (the
same bound as its watchers', `delivery.serve.model_watch`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from ofa_fleet.contract.rollout import RolloutStrategy, pinned_sha256, strategy_of
from ofa_fleet.delivery.fleets.fleet_view import FleetView, fleet_view
from ofa_fleet.delivery.rollout import RolloutState
from ofa_fleet.delivery.store.model_store import ModelRecord, ModelStore
from ofa_fleet.delivery.store.rollout_store import RolloutStore
from ofa_fleet.serving.change_follower import follow_changes
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.storage.lru import Lru
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc

FLEET_TTL_SECONDS = 5.0
TARGET_TTL_SECONDS = 0.5
MAX_CACHED_TARGETS = 100_000


class FleetDirectory:
    """Fleet records from the registry (operator token), cached for a few seconds."""

    def __init__(self, registry: registry_pb2_grpc.RegistryServiceStub, token: str) -> None:
        self.registry = RegistryClient(registry, token)
        self._stub = registry
        self._token = token
        self._fleets: dict[str, tuple[FleetView, float]] = {}

    async def fleet(self, name: str, fresh: bool = False) -> FleetView:
        """The record of the fleet whose id is ``name``; ``fresh`` skips the cache (before
        changing the fleet)."""
        cached = self._fleets.get(name)
        if not fresh and cached is not None and cached[1] > time.monotonic():
            return cached[0]
        fleet = fleet_view(await self.registry.get_fleet(name))
        self.remember(fleet)
        return fleet

    async def profile_exists(self, name: str) -> None:
        """NotFoundError (the registry's word) unless profile ``name`` exists."""
        await self.registry.get_profile(name)

    async def all(self) -> list[FleetView]:
        """Every fleet, fresh from the registry (an operator's listing, not a device's)."""
        fleets = [fleet_view(f) for f in await self.registry.list_fleets()]
        for fleet in fleets:
            self.remember(fleet)
        return fleets

    async def update(self, request: registry_pb2.UpdateFleetRequest) -> FleetView:
        """Change a fleet at the registry; the answer is remembered as its record."""
        fleet = fleet_view(await self.registry.update_fleet(request))
        self.remember(fleet)
        return fleet

    async def follow_updates(self, changed: Callable[[], None]) -> None:
        """Until cancelled: forget a fleet's record the moment the registry changes it
        (a new profile or policy from any replica), then call `changed` so that devices
        are told at once instead of after the cache's few seconds."""

        def forget(change: registry_pb2.WatchChangesResponse) -> None:
            self._fleets.pop(change.id, None)
            changed()

        def forget_all() -> None:
            self._fleets.clear()
            changed()

        await follow_changes(
            self._stub,
            self._token,
            [registry_pb2.CHANGE_KIND_FLEET],
            [registry_pb2.CHANGE_OPERATION_UPDATED],
            forget,
            forget_all,
            "fleet updates",
        )

    def remember(self, fleet: FleetView) -> None:
        """Cache ``fleet`` as the registry just returned it (e.g. after an update)."""
        self._fleets[fleet.name] = (fleet, time.monotonic() + FLEET_TTL_SECONDS)


@dataclass(frozen=True)
class FleetTarget:
    """What a fleet's devices should run: one model, or during a staged rollout's canary
    phase the new model for the canaries and the previous one for the rest."""

    model: ModelRecord | None
    canary_model: ModelRecord | None = None
    canaries: frozenset[str] = frozenset()

    def for_device(self, device_id: str) -> ModelRecord | None:
        """None while there is no model for this device yet."""
        if self.canary_model is not None and device_id in self.canaries:
            return self.canary_model
        return self.model


@dataclass(frozen=True)
class _CachedTarget:
    target: FleetTarget
    fleet: FleetView  # the record it was computed from
    writes: int  # `Database.committed_writes` before it was read


class TargetModels:
    """The models a fleet's devices should run now, by its rollout policy."""

    def __init__(
        self, store: ModelStore, fleets: FleetDirectory, rollouts: RolloutStore | None = None
    ) -> None:
        self.store = store
        self.fleets = fleets
        self.rollouts = rollouts or RolloutStore(store.database)
        self._cached: Lru[str, _CachedTarget] = Lru(
            max_entries=MAX_CACHED_TARGETS, ttl_seconds=TARGET_TTL_SECONDS
        )

    async def for_fleet(self, fleet_name: str) -> FleetTarget:
        fleet = await self.fleets.fleet(fleet_name)
        writes = self.store.database.committed_writes
        cached = self._cached.get(fleet_name)
        if cached is not None and cached.fleet is fleet and cached.writes == writes:
            return cached.target
        target = await asyncio.to_thread(fleet_target, self.store, self.rollouts, fleet)
        self._cached.put(fleet_name, _CachedTarget(target, fleet, writes))
        return target

    async def fleets_by_model(self) -> dict[tuple[str, str], list[str]]:
        """For each model, by (profile, sha256), that some fleet's devices are told to run
        now, those fleets' names."""
        running: dict[tuple[str, str], list[str]] = {}
        for fleet in await self.fleets.all():
            target = await asyncio.to_thread(fleet_target, self.store, self.rollouts, fleet)
            for record in (target.model, target.canary_model):
                if record is None:
                    continue
                fleets = running.setdefault((record.profile_name, record.sha256), [])
                if fleet.name not in fleets:
                    fleets.append(fleet.name)
        return running


def fleet_target(store: ModelStore, rollouts: RolloutStore, fleet: FleetView) -> FleetTarget:
    """What ``fleet``'s policy gives its devices now (blocking: reads the database)."""
    strategy = strategy_of(fleet.rollout)
    if strategy is RolloutStrategy.PINNED:
        return FleetTarget(store.record(fleet.profile, pinned_sha256(fleet.rollout)))
    if strategy is RolloutStrategy.STAGED:
        return _staged(store, rollouts, fleet)
    return FleetTarget(store.current(fleet.profile))


def _staged(store: ModelStore, rollouts: RolloutStore, fleet: FleetView) -> FleetTarget:
    """The fleet's rollout as stored; before its first one, the current model (a
    fleet's first model goes to every device, see `delivery.rollout`)."""
    rollout = rollouts.get(fleet.name)
    if rollout is None or rollout.profile_name != fleet.profile:
        return FleetTarget(store.current(fleet.profile))
    rest = rollout.model_for("")  # a device that is no canary
    model = store.record(fleet.profile, rest) if rest else None
    if rollout.state != RolloutState.CANARY:
        return FleetTarget(model)
    canary_model = store.record(fleet.profile, rollout.to_sha256)
    return FleetTarget(model, canary_model, frozenset(rollout.canaries))
