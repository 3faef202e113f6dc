"""Migration 0005 on data the sha256-keyed schema held: two profiles on the same bytes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, text

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.delivery.migrations import DELIVERY_MIGRATIONS
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.storage.database import Database, DatabaseUrl
from tests.databases import database_url
from tests.delivery.conftest import (
    DATABASES,
    SIGNATURE,
    alembic_config,
    blob_store,
    manifest_for,
    migrated_up_to,
    model_bytes,
)

PI, GATEWAY, CAMERA = "raspberry-pi-4", "x86-gateway", "camera"


def _insert_model(connection: Connection, manifest: Manifest, joules: float) -> None:
    connection.execute(
        text(
            "INSERT INTO models (sha256, size_bytes, profile_name, profile_revision,"
            " supernet_version, arch, figures_json, manifest, signature, created_us,"
            " specialization_cpu_seconds, specialization_joules, specialization_co2e_grams)"
            " VALUES (:sha, :size, :profile, 1, :version, :arch, '{}', :manifest,"
            " :signature, 1, 1, :joules, 0.5)"
        ),
        {
            "sha": manifest.sha256,
            "size": manifest.size_bytes,
            "profile": manifest.profile_name,
            "version": manifest.supernet_version,
            "arch": manifest.arch,
            "manifest": manifest.canonical_bytes(),
            "signature": SIGNATURE,
            "joules": joules,
        },
    )


def _point(connection: Connection, profile: str, sha256: str, current: bool) -> None:
    if current:
        connection.execute(
            text("INSERT INTO current_models VALUES (:p, :s, 1)"), {"p": profile, "s": sha256}
        )
    connection.execute(
        text(
            "INSERT INTO model_history (profile_name, sha256, reason, at_us)"
            " VALUES (:p, :s, 'missing', 1)"
        ),
        {"p": profile, "s": sha256},
    )


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """Delivery's database of each kind, not migrated yet."""
    with database_url(request.param, tmp_path) as url:
        opened = Database(DatabaseUrl.parse(url), DELIVERY_MIGRATIONS)
        try:
            yield opened
        finally:
            opened.close()


def test_each_profile_on_shared_bytes_gets_a_record_then_its_own_manifest(
    database: Database, tmp_path: Path
) -> None:
    shared, older = model_bytes(1), model_bytes(2)
    pi_manifest = manifest_for(shared, PI, predicted_latency_ms=1.356)
    with migrated_up_to(database, "0004") as connection:
        _insert_model(connection, pi_manifest, joules=30.0)
        _insert_model(connection, manifest_for(older, CAMERA), joules=5.0)
        _point(connection, PI, pi_manifest.sha256, current=True)
        _point(connection, GATEWAY, pi_manifest.sha256, current=True)
        _point(connection, CAMERA, pi_manifest.sha256, current=False)  # history only
        _point(connection, CAMERA, manifest_for(older).sha256, current=True)
    database.migrate()
    store = ModelStore(database, blob_store("database", database, tmp_path / "b"))
    store.blobs.put(shared)

    pi = store.record(PI, pi_manifest.sha256)
    assert pi.signed_for_its_profile and pi.cost == EnergyCost(1, 30, 0.5)
    carried = store.current(GATEWAY)
    assert carried is not None and carried.profile_name == GATEWAY
    assert not carried.signed_for_its_profile  # the reconciler specializes it again
    assert carried.manifest == pi_manifest and carried.cost == EnergyCost()
    assert store.record(CAMERA, pi_manifest.sha256).profile_name == CAMERA
    assert store.profiles_of(pi_manifest.sha256) == [CAMERA, PI, GATEWAY]
    assert [h.sha256 for h in store.history(GATEWAY)] == [pi_manifest.sha256]
    assert store.specialization_total() == EnergyCost(2, 35, 1.0)  # not counted twice

    own = manifest_for(shared, GATEWAY, revision=4, predicted_latency_ms=0.549)
    signed = store.add(own, bytes(64), shared, EnergyCost(1, 10, 0.25))
    assert signed.signed_for_its_profile and signed.manifest == own
    assert store.current(GATEWAY) == signed and signed.signature == bytes(64)
    assert store.record(PI, pi_manifest.sha256) == pi  # untouched
    assert store.add(own, SIGNATURE, shared) == signed  # from now on, idempotent
    database.migrate()  # again: nothing changes
    assert store.current(GATEWAY) == signed


def test_a_downgrade_keeps_the_oldest_record_of_shared_bytes_and_upgrades_again(
    database: Database, tmp_path: Path
) -> None:
    database.migrate()
    store = ModelStore(database, blob_store("database", database, tmp_path / "b"))
    data = model_bytes(1)
    for profile in (PI, GATEWAY):
        store.add(manifest_for(data, profile), SIGNATURE, data)
        store.set_current(profile, manifest_for(data).sha256, "missing")
    with database.writer.connect() as connection:
        command.downgrade(alembic_config(connection), "0004")
        connection.commit()
        kept = connection.execute(text("SELECT profile_name FROM models")).all()
        assert [row[0] for row in kept] == [PI]  # the oldest: added first
    database.migrate()
    assert store.profiles_of(manifest_for(data).sha256) == [PI, GATEWAY]
    assert not store.current(GATEWAY).signed_for_its_profile  # carried over again
