"""The leader lock: one holder at a time, and a dead holder's lock is free again."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from ofa_fleet.delivery.migrations import DELIVERY_MIGRATIONS
from ofa_fleet.storage.database import Database, DatabaseUrl
from ofa_fleet.storage.leadership import PostgresLeaderLock, leader_lock
from tests.databases import POSTGRES_URL, postgres_schema

KEY = 0x5EAD


def test_one_holder_at_a_time_on_sqlite(tmp_path: Path):
    url = DatabaseUrl.parse(f"sqlite:///{tmp_path / 'delivery.db'}")
    first, second = Database(url, DELIVERY_MIGRATIONS), Database(url, DELIVERY_MIGRATIONS)
    one, two = leader_lock(first, KEY), leader_lock(second, KEY)
    assert one.try_acquire() and one.held()
    assert not two.try_acquire() and not two.held()
    assert leader_lock(first, KEY + 1).try_acquire()  # another role is another lock
    one.release()
    assert not one.held()
    assert two.try_acquire() and two.held()
    two.release()


@pytest.mark.integration
def test_one_holder_at_a_time_on_postgres_and_a_dead_holder_frees_it():
    with postgres_schema() as url:
        first = Database(DatabaseUrl.parse(url), DELIVERY_MIGRATIONS)
        second = Database(DatabaseUrl.parse(url), DELIVERY_MIGRATIONS)
        try:
            one, two = leader_lock(first, KEY), leader_lock(second, KEY)
            assert isinstance(one, PostgresLeaderLock)
            assert one.try_acquire() and one.held()
            assert not two.try_acquire()
            one.release()
            assert two.try_acquire() and two.held()
            # The holder's connection dies, as when its process is killed: the lock is
            # the server's to release, and the holder learns it no longer leads.
            assert two._connection is not None
            pid = two._connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            two._connection.commit()
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            assert not two.held()
            assert one.try_acquire() and one.held()
            one.release()
        finally:
            first.close()
            second.close()


@pytest.mark.integration
def test_separate_schemas_do_not_contend():
    with postgres_schema() as url_a, postgres_schema() as url_b:
        a = Database(DatabaseUrl.parse(url_a), DELIVERY_MIGRATIONS)
        b = Database(DatabaseUrl.parse(url_b), DELIVERY_MIGRATIONS)
        try:
            lock_a, lock_b = leader_lock(a, KEY), leader_lock(b, KEY)
            assert lock_a.try_acquire() and lock_b.try_acquire()
            lock_a.release()
            lock_b.release()
        finally:
            a.close()
            b.close()
