"""The change feed behind WatchChanges: committed changes after a cursor, then live ones.

A write on this replica wakes its watchers at once; writes on other replicas (several
registries over one PostgreSQL) are found by polling, so every watcher sees every change
within `poll_seconds` whichever replica committed it. A watcher reads at most once per
`MIN_READ_SECONDS`, whatever wakes it: while a fleet enrols, commits come every few
milliseconds, and reading after each (three queries) took about an eighth of the
registry's time on PostgreSQL; changes committed meanwhile come together in the next
read. Shutdown ends every watch cleanly.

Changes are held for `retention_seconds` and then pruned (`prune_forever`), so the table
does not grow with every device report forever. Cursors have no gaps, so a watcher whose
next changes were pruned is told so (CURSOR_EXPIRED) instead of silently skipping them:
after each read the feed checks that nothing between its position and the oldest change
held is missing. A filtered watch moves its position over every change it has looked at,
shown or not, so it is judged by what it read, not by what it was sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from ofa_fleet.contract.error_details import CURSOR_EXPIRED
from ofa_fleet.errors import InvalidArgumentError, OutOfRangeError
from ofa_fleet.registry.records import Change, ChangeKind, ChangeOperation
from ofa_fleet.registry.retention import DEFAULT_RETENTION_SECONDS, check_retention_seconds
from ofa_fleet.registry.store import RegistryStore

log = logging.getLogger("ofa_fleet.registry")
BATCH = 500
MIN_READ_SECONDS = 0.05
MAX_PRUNE_INTERVAL_SECONDS = 3600.0


class ChangeFeed:
    def __init__(
        self,
        store: RegistryStore,
        poll_seconds: float = 1.0,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.retention_seconds = check_retention_seconds(retention_seconds)
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()

    def notify(self) -> None:
        """A change committed here; wake every watcher (call on the event loop)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        self._closed.set()
        self._changed.set()

    async def watch(
        self,
        after_cursor: int,
        kinds: frozenset[ChangeKind] = frozenset(),
        operations: frozenset[ChangeOperation] = frozenset(),
        from_head: bool = False,
    ) -> AsyncIterator[Change]:
        last = await asyncio.to_thread(self.store.last_cursor)
        if from_head:
            if after_cursor:
                raise InvalidArgumentError("give after_cursor or from_head, not both")
            after_cursor = last
        if after_cursor > last:
            raise OutOfRangeError(
                f"after_cursor {after_cursor} is ahead of the newest change ({last}); was the "
                "registry's database replaced? Watch from 0 and reconcile everything"
            )
        cursor = after_cursor
        loop = asyncio.get_running_loop()
        next_read = 0.0
        while not self._closed.is_set():
            woken = self._changed
            if (delay := next_read - loop.time()) > 0:
                await asyncio.sleep(delay)  # what commits meanwhile is read with the rest
            next_read = loop.time() + MIN_READ_SECONDS
            head = await asyncio.to_thread(self.store.last_cursor)
            if cursor == head:
                await self._wait(woken)
                continue
            changes = await asyncio.to_thread(
                self.store.changes_after, cursor, BATCH, head, kinds, operations
            )
            if cursor > 0:  # 0 asks for whatever is held; any later position must be whole
                await self._check_held(cursor, head)
            for change in changes:
                yield change
            cursor = changes[-1].cursor if len(changes) == BATCH else head

    async def _check_held(self, cursor: int, head: int) -> None:
        oldest = await asyncio.to_thread(self.store.first_cursor)
        if cursor + 1 < oldest:
            raise OutOfRangeError(
                f"the changes after cursor {cursor} are no longer held (kept "
                f"{self.retention_seconds / 3600:g} h; the oldest is {oldest}): list the "
                f"records again and watch from cursor {head}",
                reason=CURSOR_EXPIRED,
                facts={"oldest_cursor": str(oldest), "head_cursor": str(head)},
            )

    async def prune_forever(self) -> None:
        """Forget changes older than the retention, now and then, until cancelled."""
        every = min(MAX_PRUNE_INTERVAL_SECONDS, self.retention_seconds / 10)
        while True:
            cutoff_us = int((time.time() - self.retention_seconds) * 1_000_000)
            try:
                pruned = await asyncio.to_thread(self.store.prune_changes, cutoff_us)
            except Exception:  # the database may be down for a while; the next round tries
                log.exception("could not prune the change feed")
            else:
                if pruned:
                    log.info("change feed pruned", extra={"changes": pruned})
            await asyncio.sleep(every)

    async def _wait(self, woken: asyncio.Event) -> None:
        waits = {asyncio.create_task(woken.wait()), asyncio.create_task(self._closed.wait())}
        try:
            await asyncio.wait(
                waits, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in waits:
                task.cancel()
