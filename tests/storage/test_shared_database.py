"""Two services' histories in one database: each migrates its own tables, never the other's."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text

from ofa_fleet.delivery.migrations import DELIVERY_MIGRATIONS
from ofa_fleet.delivery.store import tables as delivery_tables
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.registry import tables as registry_tables
from ofa_fleet.registry.migrations import REGISTRY_MIGRATIONS
from ofa_fleet.storage.database import Database, DatabaseUrl
from ofa_fleet.storage.migrations import Migrations, owned_by
from tests.databases import database_url

HISTORIES = [
    (REGISTRY_MIGRATIONS, registry_tables.Base.metadata),
    (DELIVERY_MIGRATIONS, delivery_tables.Base.metadata),
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


def _differences(database: Database, metadata: MetaData) -> list[object]:
    with database.writer.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": database.migrations.version_table,
                "include_name": owned_by(metadata),
            },
        )
        return list(compare_metadata(context, metadata))


def test_both_histories_migrate_one_database(shared_url: str) -> None:
    databases = [Database(DatabaseUrl.parse(shared_url), m) for m, _ in HISTORIES]
    try:
        for database in databases * 2:  # the second round changes nothing
            database.migrate()
        names = set(databases[0].table_names())
        assert {"alembic_version", "alembic_version_delivery", "profiles", "models"} <= names
        for database, (_, metadata) in zip(databases, HISTORIES, strict=True):
            assert _differences(database, metadata) == []
        with databases[0].read_connection() as connection:
            versions = [
                connection.scalar(text(f"SELECT version_num FROM {m.version_table}"))
                for m, _ in HISTORIES
            ]
        assert versions == [_head(m) for m, _ in HISTORIES]
    finally:
        for database in databases:
            database.close()


def test_histories_have_their_own_version_tables_and_locks() -> None:
    histories: list[Migrations] = [m for m, _ in HISTORIES]
    assert len({m.version_table for m in histories}) == len(histories)
    assert len({m.lock_key for m in histories}) == len(histories)
    assert REGISTRY_MIGRATIONS.version_table == "alembic_version"  # what older databases hold
    assert all((m.location / "env.py").is_file() for m in histories)
    assert all(any((m.location / "versions").glob("0001_*.py")) for m in histories)


@pytest.mark.integration
def test_replicas_of_both_services_starting_together_migrate_once(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    with database_url("postgresql", tmp_path) as url:

        def migrate(migrations: Migrations) -> None:
            database = Database(DatabaseUrl.parse(url), migrations)
            try:
                database.migrate()
            except BaseException as error:  # collected and reported by the assertion below
                failures.append(error)
            finally:
                database.close()

        threads = [
            threading.Thread(target=migrate, args=(m,)) for m, _ in HISTORIES for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert failures == []


def test_url_errors_name_the_setting_they_came_from() -> None:
    with pytest.raises(InvalidArgumentError, match="--delivery-db sqlite needs a file"):
        DatabaseUrl.parse("sqlite://", field="--delivery-db")
    with pytest.raises(InvalidArgumentError, match="--db: unsupported database 'mysql'"):
        DatabaseUrl.parse("mysql://host/db")


def _head(history: Migrations) -> str:
    """The newest revision of a history, from its own scripts (not a figure kept here)."""
    config = Config()
    config.set_main_option("script_location", str(history.location))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head
