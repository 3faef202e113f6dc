"""Where a service's records live: an SQLite file by default, PostgreSQL by URL.

SQLite is one writer at a time by design, so the writer engine holds a single connection
that begins every transaction with ``BEGIN IMMEDIATE``: writers queue in the pool instead
of colliding in SQLite's lock and failing with "database is locked". Readers use their own
pool and, in WAL mode, never wait for the writer. ``synchronous=FULL`` makes a commit
durable before the call is acknowledged, power loss included. Two `Database` objects on one
file (two processes, or two services sharing it) each hold a writer connection; they take
turns in SQLite's own lock, waiting up to the busy timeout.

PostgreSQL serves several replicas at once; both engines are the same pool there. Each
`Database` migrates one Alembic history (`Migrations`) under that history's advisory lock,
so replicas that start together migrate once, and two services can share one database.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from ofa_fleet.errors import FailedPreconditionError, InvalidArgumentError, UnavailableError
from ofa_fleet.storage.migrations import CONNECTION, VERSION_TABLE, Migrations

SQLITE_BUSY_TIMEOUT_MS = 10_000
POOL_TIMEOUT_S = 30.0
# Alembic's `op` and `context` are module-level proxies to the migration in progress: two
# upgrades at once in one process (registry and delivery starting together in `up`)
# overwrite each other's and fail. The advisory lock orders processes; this, threads.
_ALEMBIC_IN_THIS_PROCESS = threading.Lock()


@dataclass(frozen=True)
class DatabaseUrl:
    """A validated database URL; ``postgresql://`` is given the psycopg 3 driver."""

    url: URL

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @classmethod
    def parse(cls, value: str, field: str = "--db") -> DatabaseUrl:
        """`value` checked; errors name `field`, the flag or setting it came from."""
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise InvalidArgumentError(
                f"{field} {value!r} is not a database URL; use sqlite:///PATH or "
                "postgresql://USER@HOST:PORT/DATABASE"
            ) from exc
        backend = url.get_backend_name()
        if backend == "postgresql":
            return cls(url.set(drivername="postgresql+psycopg"))
        if backend == "sqlite":
            if not url.database or url.database == ":memory:":
                raise InvalidArgumentError(
                    f"{field} sqlite needs a file (sqlite:///PATH): an in-memory database "
                    "would lose every record when the server stops"
                )
            return cls(url.set(drivername="sqlite+pysqlite"))
        raise InvalidArgumentError(
            f"{field}: unsupported database {backend!r}; use sqlite:///PATH or postgresql://..."
        )

    def redacted(self) -> str:
        return self.url.render_as_string(hide_password=True)


class Database:
    """One service's engines and sessions; see the module docstring for the two pools.

    `migrations` is the history `migrate` applies: the service's own tables, version table
    and lock, so services sharing a database never migrate each other's tables.
    """

    def __init__(self, url: DatabaseUrl, migrations: Migrations, pool_size: int = 8) -> None:
        self.url = url
        self.migrations = migrations
        if url.is_sqlite:
            _create_private(Path(url.url.database or ""))
            self.writer = _sqlite_engine(url.url, pool_size=1, begin="BEGIN IMMEDIATE")
            self.reader = _sqlite_engine(url.url, pool_size=pool_size, begin="BEGIN")
        else:
            self.writer = create_engine(
                url.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_timeout=POOL_TIMEOUT_S,
                pool_pre_ping=True,
            )
            self.reader = self.writer
        self._write_sessions = sessionmaker(self.writer, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.reader, expire_on_commit=False)
        self._committed = 0

    @property
    def committed_writes(self) -> int:
        """How many write transactions this object has committed, counted after each
        commit. A cache of something read here keeps the count it saw before reading,
        and is stale once the count moves: this process changed something. (Another
        process's writes it cannot see; such a cache needs a short expiry as well.)"""
        return self._committed

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction that commits when the block ends and rolls back if it raises."""
        with _unavailable_on_connection_loss(self.url), self._write_sessions.begin() as session:
            yield session
        self._committed += 1  # a lost increment under threads still moves the count

    @contextlib.contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """Like `write`, without the ORM: for hot paths where its bookkeeping would dominate."""
        with _unavailable_on_connection_loss(self.url), self.writer.begin() as connection:
            yield connection
        self._committed += 1

    @contextlib.contextmanager
    def read_connection(self) -> Iterator[Connection]:
        with _unavailable_on_connection_loss(self.url), self.reader.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with _unavailable_on_connection_loss(self.url), self._read_sessions.begin() as session:
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest migration (a no-op when it is there already)."""
        history = self.migrations
        lock = {"key": history.lock_key}
        with _unavailable_on_connection_loss(self.url), self.writer.connect() as connection:
            if not self.url.is_sqlite:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), lock)
                connection.commit()
            try:
                config = Config()
                config.set_main_option("script_location", str(history.location))
                config.attributes[CONNECTION] = connection
                config.attributes[VERSION_TABLE] = history.version_table
                with _ALEMBIC_IN_THIS_PROCESS:
                    command.upgrade(config, "head")
                connection.commit()
            finally:
                if not self.url.is_sqlite:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), lock)
                    connection.commit()

    def revisions(self) -> tuple[str | None, str]:
        """The revision the database stands at (None before the first migration) and the
        newest this build knows."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(self.migrations.location))
        head = ScriptDirectory.from_config(config).get_current_head() or ""
        with _unavailable_on_connection_loss(self.url), self.reader.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": self.migrations.version_table}
            )
            return context.get_current_revision(), head

    def check_migrated(self, command_line: str) -> None:
        """FAILED_PRECONDITION unless the schema is at this build's newest migration: a
        server started without migrating (`--migrations check`, for a runtime user with no
        DDL rights) refuses a schema it does not know instead of failing later on it.
        ``command_line`` is what migrates it."""
        current, head = self.revisions()
        if current != head:
            raise FailedPreconditionError(
                f"the database {self.url.redacted()} stands at migration "
                f"{current or 'none'}, and this build needs {head}: run `{command_line}` "
                "(the Helm chart's migration Job does, before every install and upgrade)",
                reason="SCHEMA_NOT_MIGRATED",
                facts={"current_revision": current or "", "head_revision": head},
            )

    def ping(self) -> bool:
        """Whether the database answers a trivial query right now (readiness)."""
        try:
            with self.reader.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except OperationalError:
            return False

    def table_names(self) -> list[str]:
        with self.reader.connect() as connection:
            return sorted(inspect(connection).get_table_names())

    def close(self) -> None:
        self.writer.dispose()
        self.reader.dispose()


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600), if it does not exist yet.

    It holds token digests and device records; SQLite gives its WAL and shared-memory
    files the database file's mode, so they follow. An existing file keeps its mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


def _sqlite_engine(url: URL, pool_size: int, begin: str) -> Engine:
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_S,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Leave transactions to the "begin" hook below instead of the driver's own guesses.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


@contextlib.contextmanager
def _unavailable_on_connection_loss(url: DatabaseUrl) -> Iterator[None]:
    try:
        yield
    except PoolTimeoutError as exc:
        raise UnavailableError(
            f"database {url.redacted()} is busy: no connection free within {POOL_TIMEOUT_S:.0f} s"
        ) from exc
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UnavailableError(f"database {url.redacted()} is unavailable: {reason}") from exc
