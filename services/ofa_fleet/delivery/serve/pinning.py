"""Operators pin a fleet to a model, roll it back, or unpin it (`PinFleet`).

The fleet's rollout policy lives in the registry, so a pin *is* a registry change: the
fleet's policy becomes "pinned to this sha256" (`UpdateFleet`, at the revision just read,
so a concurrent edit is not overwritten), and every delivery replica applies it like any
other policy. What the fleet had before the first pin is kept here (`fleet_pins`), so an
unpin gives it back, a staged policy included, instead of guessing.

A rollback pins the model the profile had before the one the fleet runs now, as the
profile's history records it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from google.protobuf.field_mask_pb2 import FieldMask

from ofa_fleet.contract.fields import check_name, check_sha256
from ofa_fleet.contract.resource_names import fleet_name
from ofa_fleet.contract.revisions import check_revision
from ofa_fleet.contract.rollout import (
    RolloutPolicy,
    RolloutStrategy,
    pinned_sha256,
    rollout_from_proto,
    rollout_to_proto,
    strategy_of,
)
from ofa_fleet.delivery.fleets.fleet_view import FleetView
from ofa_fleet.delivery.fleets.targets import FleetDirectory
from ofa_fleet.delivery.rollout import RolloutState
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.rollout_store import RolloutStore
from ofa_fleet.delivery.store.tables import FleetPinRow
from ofa_fleet.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from ofa_fleet.v1 import registry_pb2

HISTORY_SEARCHED = 1000


class FleetPinning:
    def __init__(
        self,
        store: ModelStore,
        fleets: FleetDirectory,
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.fleets = fleets
        self.rollouts = RolloutStore(store.database)
        self.changed = changed  # this replica's watchers look again at once

    async def pin(
        self, fleet_name: str, sha256: str, rollback: bool, expected_revision: int | None = None
    ) -> FleetView:
        """The fleet after the change (see the module docstring); with `expected_revision`,
        only if the fleet is still at that revision."""
        check_name(fleet_name, "fleet_name")
        if rollback and sha256:
            raise InvalidArgumentError("give either sha256 or rollback, not both")
        fleet = await self.fleets.fleet(fleet_name, fresh=True)
        check_revision("fleet", fleet_name, fleet.revision, expected_revision)
        if rollback:
            sha256 = await asyncio.to_thread(self._previous_model, fleet)
        if not sha256:
            return await self._unpin(fleet)
        check_sha256(sha256, "sha256", required=True)
        await asyncio.to_thread(self._check_model, fleet, sha256)
        await asyncio.to_thread(self._remember_policy, fleet, sha256)
        policy = RolloutPolicy(strategy=RolloutStrategy.PINNED, pinned_model_sha256=sha256)
        return await self._update(fleet, rollout_to_proto(policy))

    async def _unpin(self, fleet: FleetView) -> FleetView:
        if strategy_of(fleet.rollout) is not RolloutStrategy.PINNED:
            return fleet  # nothing pinned: nothing to give back
        previous = await asyncio.to_thread(self._previous_policy, fleet.name)
        updated = await self._update(fleet, rollout_to_proto(previous))
        await asyncio.to_thread(self._forget_pin, fleet.name)
        return updated

    async def _update(self, fleet: FleetView, rollout: registry_pb2.RolloutPolicy) -> FleetView:
        request = registry_pb2.UpdateFleetRequest(
            fleet=registry_pb2.Fleet(name=fleet_name(fleet.name), rollout=rollout),
            update_mask=FieldMask(paths=["rollout"]),
            expected_revision=fleet.revision,
        )
        updated = await self.fleets.update(request)
        self.changed()
        return updated

    def _check_model(self, fleet: FleetView, sha256: str) -> None:
        profiles = self.store.profiles_of(sha256)
        if not profiles:
            raise NotFoundError(f"no model {sha256}")
        if fleet.profile not in profiles:
            raise FailedPreconditionError(
                f"model {sha256} was specialized for {', '.join(map(repr, profiles))}, not "
                f"for {fleet.profile!r} (fleet {fleet.name!r}'s profile); pin one of "
                f"{fleet.profile!r}'s models (ListModels with profile_name lists them)"
            )

    def _previous_model(self, fleet: FleetView) -> str:
        """The model the profile had before the one the fleet runs now."""
        running = self._running(fleet)
        history = self.store.history(fleet.profile, HISTORY_SEARCHED)
        older = [entry.sha256 for entry in history]
        if running in older:
            older = older[older.index(running) :]
        earlier = next((sha for sha in older if sha != running), "")
        if not running or not earlier:
            raise FailedPreconditionError(
                f"fleet {fleet.name!r} has no earlier model to roll back to: profile "
                f"{fleet.profile!r} has had {len(set(older))} model(s)"
            )
        return earlier

    def _running(self, fleet: FleetView) -> str:
        strategy = strategy_of(fleet.rollout)
        if strategy is RolloutStrategy.PINNED:
            return pinned_sha256(fleet.rollout)
        if strategy is RolloutStrategy.STAGED:
            rollout = self.rollouts.get(fleet.name)
            if rollout is not None and rollout.profile_name == fleet.profile:
                # Mid-rollout the new model is the one to take back; after a rollback,
                # the previous one is what runs.
                rolled_back = rollout.state == RolloutState.ROLLED_BACK
                return rollout.from_sha256 if rolled_back else rollout.to_sha256
        current = self.store.current(fleet.profile)
        return current.sha256 if current is not None else ""

    def _remember_policy(self, fleet: FleetView, sha256: str) -> None:
        """Keep the policy an unpin gives back; a pin over a pin keeps the first one's."""
        policy = rollout_from_proto(fleet.rollout)
        with self.store.database.write() as s:
            row = s.get(FleetPinRow, fleet.name)
            pinned = strategy_of(fleet.rollout) is RolloutStrategy.PINNED
            if row is None:
                kept = RolloutPolicy() if pinned else policy  # created pinned: auto-latest
                row = FleetPinRow(
                    fleet_name=fleet.name, previous_rollout_json=json.dumps(kept.to_dict())
                )
                s.add(row)
            elif not pinned:  # unpinned since by hand (fleets update): that policy is it
                row.previous_rollout_json = json.dumps(policy.to_dict())
            row.sha256 = sha256
            row.pinned_us = time.time_ns() // 1000

    def _previous_policy(self, fleet_name: str) -> RolloutPolicy:
        with self.store.database.read() as s:
            row = s.get(FleetPinRow, fleet_name)
            if row is None:
                return RolloutPolicy()
            return RolloutPolicy.from_dict(json.loads(row.previous_rollout_json))

    def _forget_pin(self, fleet_name: str) -> None:
        with self.store.database.write() as s:
            row = s.get(FleetPinRow, fleet_name)
            if row is not None:
                s.delete(row)
