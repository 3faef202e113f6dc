"""Group commit: concurrent enrolments and heartbeats share one transaction.

When a fleet boots, thousands of devices enrol and beat at once. Committing each in its
own transaction pays a transaction's fixed cost (and, with SQLite's ``synchronous=FULL``,
a disk flush) per device, one writer at a time. Here writes that arrive while a commit is
under way wait for the next one and are committed together, and a commit that is not
full waits `LINGER_SECONDS` for more to join; every caller is still answered only after
its own write is durable.

A write is an item of a kind that one call can do for many (`submit_shared`: one UPDATE
for every device that beat, one INSERT for every device that enrolled). A batch calls
each kind's function once, with all of that kind's items, in a savepoint of its own, and
each caller gets its own item's outcome: an item that fails (a fleet deleted meanwhile)
fails alone, and a kind whose call fails as a whole is rolled back alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection

from ofa_fleet.errors import OfaFleetError
from ofa_fleet.storage.database import Database

# How long a commit waits for more writes to join it when it is not full. A fleet's
# heartbeats arrive spread out (10,000 devices every 30 s: one every 3 ms), so without a
# wait nearly every heartbeat paid a commit of its own: 3,000 devices beating every 10 s
# cost the registry 1,458 µs of CPU per heartbeat; waiting 10 ms, 936 µs; 30 ms, 747 µs
# (bench/fleet_load.py). Heartbeats and enrolments are answered that much later, which
# neither a device nor an operator notices.
LINGER_SECONDS = 0.01
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
# Many items in one go: each item's result, or the OfaFleetError it failed with.
SharedWrite = Callable[[Connection, Sequence[Any]], Mapping[Any, Any]]


@dataclass(frozen=True)
class _Shared:
    """One caller's item of a shared write."""

    write: SharedWrite
    item: Hashable


class WriteBatcher:
    def __init__(
        self, database: Database, max_batch: int = 128, linger_seconds: float = LINGER_SECONDS
    ) -> None:
        self.database = database
        self.max_batch = max_batch
        self.linger_seconds = linger_seconds
        self._pending: list[tuple[_Shared, asyncio.Future[Any]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit_shared(
        self, write: Callable[[Connection, Sequence[K]], Mapping[K, T | OfaFleetError]], item: K
    ) -> T:
        """`item` joins every other item of `write` in the next group commit, which calls
        `write` once with them all; `item`'s own result (or error) once that is durable."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((_Shared(write, item), future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            if len(self._pending) < self.max_batch and self.linger_seconds > 0:
                await asyncio.sleep(self.linger_seconds)  # let a few more join this commit
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                outcomes = await asyncio.to_thread(self._commit, [w for w, _ in batch])
            except Exception as error:  # the commit itself failed: nobody's write is durable
                outcomes = [error] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the caller gave up (cancelled); its write stands
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _commit(self, writes: list[_Shared]) -> list[Any]:
        kinds: dict[SharedWrite, list[Hashable]] = {}
        for write in writes:
            kinds.setdefault(write.write, []).append(write.item)
        if len(kinds) == 1:
            ((function, items),) = kinds.items()
            alone = self._alone(function, items)
            return [alone[write.item] for write in writes]
        results: dict[tuple[SharedWrite, Hashable], Any] = {}
        with self.database.write_connection() as connection:
            for function, items in kinds.items():
                for item, outcome in self._in_savepoint(connection, function, items).items():
                    results[(function, item)] = outcome
        return [results[(write.write, write.item)] for write in writes]

    def _alone(self, write: SharedWrite, items: list[Hashable]) -> Mapping[Any, Any]:
        """`write`'s outcomes for `items` when it is the batch's only kind: no savepoint
        (two round trips fewer per commit on PostgreSQL), since rolling back the whole
        transaction when it fails as a whole rolls back that kind alone."""
        try:
            with self.database.write_connection() as connection:
                return write(connection, list(dict.fromkeys(items)))
        except OfaFleetError as error:
            return dict.fromkeys(items, error)

    @staticmethod
    def _in_savepoint(
        connection: Connection, write: SharedWrite, items: list[Hashable]
    ) -> Mapping[Any, Any]:
        """`write`'s outcomes for `items` (each once); if it fails as a whole, that error
        for every item."""
        savepoint = connection.begin_nested()
        try:
            outcomes = write(connection, list(dict.fromkeys(items)))
        except OfaFleetError as error:
            savepoint.rollback()
            return dict.fromkeys(items, error)
        savepoint.commit()
        return outcomes
