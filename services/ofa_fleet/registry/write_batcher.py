"""Group commit: concurrent enrolments and heartbeats share one transaction.

When a fleet boots, thousands of devices enrol and beat at once. Committing each in its
own transaction pays a transaction's fixed cost (and, with SQLite's ``synchronous=FULL``,
a disk flush) per device, one writer at a time. Here writes that arrive while a commit is
under way wait for the next one and are committed together; every caller is still
answered only after its own write is durable. Each write runs in a savepoint, so one that
fails (a fleet deleted meanwhile) is rolled back alone and the rest of the batch commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from ofa_fleet.errors import OfaFleetError
from ofa_fleet.storage.database import Database

T = TypeVar("T")
Write = Callable[[Connection], Any]


class WriteBatcher:
    def __init__(self, database: Database, max_batch: int = 128) -> None:
        self.database = database
        self.max_batch = max_batch
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, write: Callable[[Connection], T]) -> T:
        """Run `write` in the next group commit; its result once that commit is durable."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
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

    def _commit(self, writes: list[Write]) -> list[Any]:
        outcomes: list[Any] = []
        with self.database.write_connection() as connection:
            for write in writes:
                savepoint = connection.begin_nested()
                try:
                    outcomes.append(write(connection))
                except OfaFleetError as error:
                    savepoint.rollback()
                    outcomes.append(error)
                else:
                    savepoint.commit()
        return outcomes
