"""Which model a device should run: its fleet's rollout policy applied to the model store.

A device belongs to a fleet, a fleet has a profile and a rollout policy (in the
registry), and a profile has a current model (in the store). Fleets change rarely and a
booting fleet asks thousands of times in a minute, so fleet records are cached briefly;
an edited policy is seen within `FLEET_TTL_SECONDS`.
"""

from __future__ import annotations

import asyncio
import time

from grpc import aio

from ofa_fleet.delivery.model_store import ModelRecord, ModelStore
from ofa_fleet.errors import FailedPreconditionError
from ofa_fleet.serving.client import bearer, upstream_error
from ofa_fleet.v1 import common_pb2, registry_pb2, registry_pb2_grpc

FLEET_TTL_SECONDS = 5.0
REGISTRY_TIMEOUT_SECONDS = 5.0


class FleetDirectory:
    """Fleet records from the registry (operator token), cached for a few seconds."""

    def __init__(self, registry: registry_pb2_grpc.RegistryServiceStub, token: str) -> None:
        self.registry = registry
        self.token = token
        self._fleets: dict[str, tuple[registry_pb2.Fleet, float]] = {}

    async def fleet(self, name: str) -> registry_pb2.Fleet:
        cached = self._fleets.get(name)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            answer = await self.registry.GetFleet(
                registry_pb2.GetFleetRequest(name=name),
                metadata=bearer(self.token),
                timeout=REGISTRY_TIMEOUT_SECONDS,
            )
        except aio.AioRpcError as error:
            raise upstream_error(error, f"fleet {name!r}", "the registry") from None
        self._fleets[name] = (answer.fleet, time.monotonic() + FLEET_TTL_SECONDS)
        return answer.fleet


class TargetModels:
    """The model a fleet's devices should run now, by its rollout policy."""

    def __init__(self, store: ModelStore, fleets: FleetDirectory) -> None:
        self.store = store
        self.fleets = fleets

    async def for_fleet(self, fleet_name: str) -> ModelRecord | None:
        """None while the fleet's profile has no model yet."""
        fleet = await self.fleets.fleet(fleet_name)
        strategy = fleet.rollout.strategy
        if strategy == common_pb2.ROLLOUT_STRATEGY_PINNED:
            return await asyncio.to_thread(self.store.record, fleet.rollout.pinned_model_sha256)
        if strategy == common_pb2.ROLLOUT_STRATEGY_STAGED:
            raise FailedPreconditionError(
                f"fleet {fleet_name!r} uses a staged rollout, which this delivery version "
                "does not serve yet; use auto-latest or pinned"
            )
        return await asyncio.to_thread(self.store.current, fleet.profile)
