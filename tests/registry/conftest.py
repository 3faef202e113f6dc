"""The registry's tests: the same suite against an SQLite file and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.hardware.profile_file import load_profile
from ofa_fleet.registry.migrations import REGISTRY_MIGRATIONS
from ofa_fleet.registry.store import RegistryStore
from ofa_fleet.storage.database import Database, DatabaseUrl
from tests.databases import database_url
from tests.registry.server_thread import RegistryServerThread

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "profiles"

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[RegistryStore]:
    database = Database(DatabaseUrl.parse(db_url), REGISTRY_MIGRATIONS)
    database.migrate()
    try:
        yield RegistryStore(database)
    finally:
        database.close()


def example_profile(name: str = "raspberry-pi-4") -> HardwareProfile:
    return load_profile(PROFILES / f"{name}.yaml")


@pytest.fixture
def registry(db_url: str) -> Iterator[RegistryServerThread]:
    with RegistryServerThread(db_url) as server:
        yield server


@pytest.fixture
def channel(registry: RegistryServerThread) -> Iterator[grpc.Channel]:
    with registry.channel() as opened:
        yield opened
