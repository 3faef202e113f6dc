"""Several registry replicas over one PostgreSQL: they migrate once and see each other's writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.registry.migrations import REGISTRY_MIGRATIONS
from ofa_fleet.storage.database import Database, DatabaseUrl
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.databases import postgres_schema
from tests.registry.conftest import example_profile
from tests.registry.server_thread import OPERATOR_TOKEN, RegistryServerThread, bearer

pytestmark = pytest.mark.integration
OPERATOR = bearer(OPERATOR_TOKEN)


@pytest.fixture
def shared_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def test_replicas_starting_together_migrate_once(shared_url: str) -> None:
    failures: list[BaseException] = []

    def migrate() -> None:
        database = Database(DatabaseUrl.parse(shared_url), REGISTRY_MIGRATIONS)
        try:
            database.migrate()
        except BaseException as error:  # collected and reported by the assertion below
            failures.append(error)
        finally:
            database.close()

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    database = Database(DatabaseUrl.parse(shared_url), REGISTRY_MIGRATIONS)
    try:
        assert "devices" in database.table_names()
    finally:
        database.close()


def test_a_watch_on_one_replica_sees_writes_on_another(shared_url: str) -> None:
    with RegistryServerThread(shared_url) as writer, RegistryServerThread(shared_url) as watcher:
        with watcher.channel() as channel:
            stream = RegistryServiceStub(channel).WatchChanges(
                pb.WatchChangesRequest(), metadata=OPERATOR, timeout=30
            )
            with writer.channel() as other:
                spec = profile_to_proto(example_profile())
                RegistryServiceStub(other).CreateProfile(
                    pb.CreateProfileRequest(profile=spec), metadata=OPERATOR, timeout=10
                )
            change = next(stream)
            stream.cancel()
        assert (change.cursor, change.id) == (1, "raspberry-pi-4")
