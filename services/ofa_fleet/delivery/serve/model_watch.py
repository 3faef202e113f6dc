"""Telling running devices that their fleet's model changed (`WatchModel`).

A thousand devices of one fleet watch the same thing, so the target is looked up once
per fleet per `poll_seconds` and shared by all its watchers, not once per device; each
watcher then picks its own device's model from it (a staged rollout's canaries run
another model than the rest, and all move on promotion or rollback). A
change this replica makes (its reconciler) wakes every watcher at once; a change made
by another replica is seen at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from ofa_fleet.delivery.fleets.targets import FleetTarget, TargetModels
from ofa_fleet.delivery.store.model_store import ModelRecord

POLL_SECONDS = 1.0


class TargetWatch:
    def __init__(self, targets: TargetModels, poll_seconds: float = POLL_SECONDS) -> None:
        self.targets = targets
        self.poll_seconds = poll_seconds
        self._seen: dict[str, tuple[FleetTarget, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._changed = asyncio.Event()
        self._closed = False

    async def follow(self, fleet: str, device_id: str) -> AsyncIterator[ModelRecord]:
        """The device's target model now (once there is one), then each time it changes."""
        sent = ""
        while not self._closed:
            woken = self._changed
            record = (await self._target(fleet)).for_device(device_id)
            if record is not None and record.sha256 != sent:
                sent = record.sha256
                yield record
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), self.poll_seconds)

    def notify(self) -> None:
        """A target may have changed here: every watcher looks again now."""
        self._seen.clear()
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        """Shutdown: every `follow` ends after its current wait."""
        self._closed = True
        self._changed.set()

    async def _target(self, fleet: str) -> FleetTarget:
        lock = self._locks.setdefault(fleet, asyncio.Lock())
        async with lock:  # one lookup per fleet, however many devices wait on it
            seen = self._seen.get(fleet)
            if seen is not None and seen[1] > time.monotonic():
                return seen[0]
            target = await self.targets.for_fleet(fleet)
            self._seen[fleet] = (target, time.monotonic() + self.poll_seconds / 2)
            return target
