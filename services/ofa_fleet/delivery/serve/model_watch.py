"""Telling running devices that their fleet's model changed (`WatchModel`).

Ten thousand devices of one fleet watch the same thing, so each watched fleet has one
task that looks its target up every `poll_seconds` (and at once when this replica
changes something: `notify`), and wakes the fleet's watchers only when the target
changed; each watcher then picks its own device's model from it (a staged rollout's
canaries run another model than the rest, and all move on promotion or rollback). An
idle watcher costs nothing but its open stream: with a timer and a lookup per watcher
per poll, 10,000 idle streams kept most of a core busy (``bench/fleet_load.py``). A
change made by another replica is seen at the next poll.

A lookup that fails once the fleet has a target (the registry briefly away) keeps the
streams open on the target they have, and is tried again at the next poll: ending every
stream would only have the whole fleet reconnect at once. A fleet's first lookup still
fails its watcher's call, as before there is anything to watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from ofa_fleet.delivery.fleets.targets import FleetTarget, TargetModels
from ofa_fleet.delivery.store.model_store import ModelRecord
from ofa_fleet.errors import OfaFleetError

POLL_SECONDS = 1.0
log = logging.getLogger("ofa_fleet.delivery")


class _WatchedFleet:
    """One fleet's watchers, its latest target and the task that keeps it fresh."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.watchers = 0
        self.target: FleetTarget | None = None
        self.moved = asyncio.Event()  # set, and replaced, each time the target changes
        self.first_lookup = asyncio.Lock()
        self.poller: asyncio.Task[None] | None = None

    def publish(self, target: FleetTarget) -> None:
        if target == self.target:
            return
        self.target = target
        moved, self.moved = self.moved, asyncio.Event()
        moved.set()


class TargetWatch:
    def __init__(self, targets: TargetModels, poll_seconds: float = POLL_SECONDS) -> None:
        self.targets = targets
        self.poll_seconds = poll_seconds
        self._fleets: dict[str, _WatchedFleet] = {}
        self._changed = asyncio.Event()
        self._closed = False

    async def follow(self, fleet: str, device_id: str) -> AsyncIterator[ModelRecord]:
        """The device's target model now (once there is one), then each time it changes."""
        watched = self._fleets.get(fleet)
        if watched is None:
            watched = self._fleets[fleet] = _WatchedFleet(fleet)
        watched.watchers += 1
        try:
            sent = ""
            while not self._closed:
                target, moved = await self._latest(watched)
                record = target.for_device(device_id)
                if record is not None and record.sha256 != sent:
                    sent = record.sha256
                    yield record
                await moved.wait()
        finally:
            watched.watchers -= 1
            if watched.watchers == 0 and self._fleets.get(fleet) is watched:
                del self._fleets[fleet]
                if watched.poller is not None:
                    watched.poller.cancel()

    def notify(self) -> None:
        """A target may have changed here: every watched fleet is looked up again now."""
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        """Shutdown: every `follow` ends now."""
        self._closed = True
        self._changed.set()
        for watched in self._fleets.values():
            watched.moved.set()

    @property
    def fleets_watched(self) -> int:
        return len(self._fleets)

    async def _latest(self, watched: _WatchedFleet) -> tuple[FleetTarget, asyncio.Event]:
        if watched.target is None:
            async with watched.first_lookup:  # one lookup, however many devices wait on it
                if watched.target is None:
                    watched.publish(await self.targets.for_fleet(watched.name))
                    watched.poller = asyncio.create_task(self._poll(watched))
        assert watched.target is not None
        return watched.target, watched.moved

    async def _poll(self, watched: _WatchedFleet) -> None:
        failing = False
        while not self._closed:
            woken = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), self.poll_seconds)
            try:
                target = await self.targets.for_fleet(watched.name)
            except Exception as error:  # the poller must outlive any one failed lookup
                if not failing:  # one line per outage, not one per poll
                    log.warning(
                        "fleet target lookup failed; watchers keep the target they have",
                        extra={"fleet": watched.name, "error": str(error)[:300]},
                        exc_info=not isinstance(error, OfaFleetError),
                    )
                failing = True
                continue
            failing = False
            watched.publish(target)
