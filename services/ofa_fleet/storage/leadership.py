"""One holder at a time of a role (e.g. "the replica that reconciles"), among replicas.

Several delivery replicas may serve one database, but only one may run the reconciler:
two would specialize the same profile twice and race to mark models current. The lock
lives where the replicas already meet:

- PostgreSQL: a session-level advisory lock, held by one dedicated connection for as long
  as the replica leads. The server drops it when that connection dies (crash, kill -9,
  network loss), so a dead leader never blocks its successor. The second key is the
  schema's hash, so deployments sharing a database in separate schemas do not contend.
- SQLite: an ``flock`` on a file beside the database, which the kernel releases when the
  process dies. SQLite files are shared by processes of one machine only, as is flock.

`held` is asked periodically: a leader whose connection broke must stop acting as one,
since another replica may already have taken over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, OperationalError

from ofa_fleet.storage.database import Database


class LeaderLock(Protocol):
    def try_acquire(self) -> bool:
        """True when this process now holds the lock; never waits for it."""
        ...

    def held(self) -> bool:
        """Whether the lock is still this process's (False after a lost connection)."""
        ...

    def release(self) -> None: ...


def leader_lock(database: Database, key: int) -> LeaderLock:
    """The lock for `key` on `database`'s backend; `key` names the role (a 31-bit int)."""
    if database.url.is_sqlite:
        return FileLeaderLock(Path(f"{database.url.url.database}.lock-{key:x}"))
    return PostgresLeaderLock(database, key)


class FileLeaderLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


class PostgresLeaderLock:
    def __init__(self, database: Database, key: int) -> None:
        self.database = database
        self.key = key
        self._connection: Connection | None = None

    def try_acquire(self) -> bool:
        if self._connection is not None:
            return self.held()
        connection = self.database.writer.connect()
        try:
            acquired = connection.execute(
                text("SELECT pg_try_advisory_lock(:key, hashtext(current_schema()))"),
                {"key": self.key},
            ).scalar_one()
            connection.commit()
        except (OperationalError, DBAPIError):
            _close_quietly(connection)
            return False
        if not acquired:
            connection.close()
            return False
        self._connection = connection
        return True

    def held(self) -> bool:
        """Asks the server, so a broken connection reads as lost, not as still held."""
        if self._connection is None:
            return False
        try:
            count = self._connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = pg_backend_pid() AND classid = :key "
                    "AND objid = hashtext(current_schema())::oid AND granted"
                ),
                {"key": self.key},
            ).scalar_one()
            self._connection.commit()
        except (OperationalError, DBAPIError):
            self._drop()
            return False
        if count == 0:
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._connection is None:
            return
        with contextlib.suppress(OperationalError, DBAPIError):
            self._connection.execute(
                text("SELECT pg_advisory_unlock(:key, hashtext(current_schema()))"),
                {"key": self.key},
            )
            self._connection.commit()
        self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            _close_quietly(self._connection)
            self._connection = None


def _close_quietly(connection: Connection) -> None:
    with contextlib.suppress(OperationalError, DBAPIError):
        connection.invalidate()  # never return a connection in an unknown state to the pool
        connection.close()
