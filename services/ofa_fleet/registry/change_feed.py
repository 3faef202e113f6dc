"""The change feed behind WatchChanges: committed changes after a cursor, then live ones.

A write on this replica wakes its watchers at once; writes on other replicas (several
registries over one PostgreSQL) are found by polling, so every watcher sees every change
within `poll_seconds` whichever replica committed it. Shutdown ends every watch cleanly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ofa_fleet.errors import OutOfRangeError
from ofa_fleet.registry.records import Change
from ofa_fleet.registry.store import RegistryStore

BATCH = 500


class ChangeFeed:
    def __init__(self, store: RegistryStore, poll_seconds: float = 1.0) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()

    def notify(self) -> None:
        """A change committed here; wake every watcher (call on the event loop)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        self._closed.set()
        self._changed.set()

    async def watch(self, after_cursor: int) -> AsyncIterator[Change]:
        last = await asyncio.to_thread(self.store.last_cursor)
        if after_cursor > last:
            raise OutOfRangeError(
                f"after_cursor {after_cursor} is ahead of the newest change ({last}); was the "
                "registry's database replaced? Watch from 0 and reconcile everything"
            )
        cursor = after_cursor
        while not self._closed.is_set():
            woken = self._changed
            changes = await asyncio.to_thread(self.store.changes_after, cursor, BATCH)
            for change in changes:
                yield change
                cursor = change.cursor
            if len(changes) == BATCH:
                continue
            await self._wait(woken)

    async def _wait(self, woken: asyncio.Event) -> None:
        waits = {asyncio.create_task(woken.wait()), asyncio.create_task(self._closed.wait())}
        try:
            await asyncio.wait(
                waits, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in waits:
                task.cancel()
