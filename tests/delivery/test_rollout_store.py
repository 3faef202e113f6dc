"""Rollouts kept in delivery's database, on SQLite and PostgreSQL, across a reopen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ofa_fleet.delivery.rollout import (
    DeviceReport,
    RolloutState,
    StagedPolicy,
    advance,
    start,
)
from ofa_fleet.delivery.store.rollout_store import RolloutStore
from tests.databases import database_url
from tests.delivery.conftest import DATABASES, open_database

POLICY = StagedPolicy(canary_percent=30, failure_threshold_percent=10, min_success_reports=2)


@pytest.fixture(params=DATABASES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as opened:
        yield opened


def test_a_rollout_round_trips_and_survives_a_reopen(url: str) -> None:
    devices = [DeviceReport(f"dev{i}", revision=i + 1) for i in range(7)]
    first = start("pis", "raspberry-pi-4", POLICY, "a" * 64, None, 10)
    rollout = advance(start("pis", "raspberry-pi-4", POLICY, "b" * 64, first, 20), devices, 4.0, 30)
    assert rollout.state == RolloutState.CANARY and len(rollout.canaries) == 3
    database = open_database(url)
    try:
        store = RolloutStore(database)
        assert store.get("pis") is None
        store.save(first)
        store.save(rollout)  # replaces the fleet's one row
        store.save(start("cams", "x86-gateway", POLICY, "c" * 64, None, 40))
    finally:
        database.close()
    database = open_database(url)
    try:
        store = RolloutStore(database)
        assert store.get("pis") == rollout
        assert [r.fleet_name for r in store.for_profile("raspberry-pi-4")] == ["pis"]
        assert store.get("cams").state == RolloutState.PROMOTED  # type: ignore[union-attr]
        store.delete("pis")
        assert store.get("pis") is None and store.for_profile("raspberry-pi-4") == []
    finally:
        database.close()
