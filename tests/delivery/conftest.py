"""Delivery's store tests: the same suite on SQLite and PostgreSQL, with files or the
database holding the blobs."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.delivery.migrations import DELIVERY_MIGRATIONS
from ofa_fleet.delivery.store.blobs import BlobStore, DatabaseBlobStore, FileBlobStore
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.storage.database import Database, DatabaseUrl
from ofa_fleet.storage.migrations import CONNECTION, VERSION_TABLE
from tests.databases import database_url

INTEGRATION = pytest.mark.integration
# (database, blob store): every pairing a deployment may choose.
BACKENDS = [
    pytest.param(("sqlite", "files"), id="sqlite-files"),
    pytest.param(("sqlite", "database"), id="sqlite-database"),
    pytest.param(("postgresql", "database"), id="postgresql-database", marks=INTEGRATION),
    pytest.param(("postgresql", "files"), id="postgresql-files", marks=INTEGRATION),
]
DATABASES = ["sqlite", pytest.param("postgresql", marks=INTEGRATION)]
SIGNATURE = bytes(range(64))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def db_url(backend: tuple[str, str], tmp_path: Path) -> Iterator[str]:
    with database_url(backend[0], tmp_path) as url:
        yield url


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    opened = open_database(db_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def blobs(backend: tuple[str, str], database: Database, tmp_path: Path) -> BlobStore:
    return blob_store(backend[1], database, tmp_path / "blobs")


@pytest.fixture
def store(database: Database, blobs: BlobStore) -> ModelStore:
    return ModelStore(database, blobs)


def open_database(url: str) -> Database:
    database = Database(DatabaseUrl.parse(url), DELIVERY_MIGRATIONS)
    database.migrate()
    return database


@contextmanager
def migrated_up_to(database: Database, revision: str) -> Iterator[Connection]:
    """A connection to ``database`` with delivery's schema only up to ``revision``: data
    written through it is what an older release left, for a later migration to carry."""
    with database.writer.connect() as connection:
        command.upgrade(alembic_config(connection), revision)
        yield connection
        connection.commit()


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration for delivery's migrations on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(DELIVERY_MIGRATIONS.location))
    config.attributes[CONNECTION] = connection
    config.attributes[VERSION_TABLE] = DELIVERY_MIGRATIONS.version_table
    return config


def blob_store(kind: str, database: Database, root: Path) -> BlobStore:
    return FileBlobStore(root) if kind == "files" else DatabaseBlobStore(database)


def model_bytes(seed: int, size: int = 4096) -> bytes:
    return random.Random(seed).randbytes(size)


def manifest_for(
    data: bytes, profile: str = "raspberry-pi-4", revision: int = 1, **figures: float
) -> Manifest:
    return Manifest(
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        profile_name=profile,
        profile_revision=revision,
        supernet_version="0123456789abcdef",
        arch="ks=3,3|e=3,4|d=2,2|r=32",
        created_us=1_700_000_000_000_000,
        figures=dict(figures) or {"latency_ms": 1.25, "top1": 0.875},
    )


class CountingBlobs:
    """A blob store that counts what reaches it, to show what the cache keeps away."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.gets = 0
        self.puts = 0

    def put(self, data: bytes) -> str:
        self.puts += 1
        return self.inner.put(data)

    def get(self, sha256: str) -> bytes:
        self.gets += 1
        return self.inner.get(sha256)

    def exists(self, sha256: str) -> bool:
        return self.inner.exists(sha256)

    def size(self, sha256: str) -> int:
        return self.inner.size(sha256)


# The running registry and delivery servers most service tests share (a fixture).
from tests.delivery.world import world  # noqa: E402, F401
