"""Delivery's side of the carbon ledger in its database: each model's specialization
cost, each supernet's ledger, and models stored before either existed. Against an SQLite
file and PostgreSQL."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.carbon.fleet_ledger import Specialization
from ofa_fleet.delivery.carbon.totals import CarbonTotals
from ofa_fleet.delivery.migrations import DELIVERY_MIGRATIONS
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.supernet_ledgers import SupernetLedgers
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.storage.database import Database, DatabaseUrl
from ofa_fleet.v1 import common_pb2
from tests.databases import database_url
from tests.delivery.conftest import (
    DATABASES,
    SIGNATURE,
    blob_store,
    manifest_for,
    migrated_up_to,
    model_bytes,
)

VERSION = "0123456789abcdef"  # manifest_for's supernet


def add(store: ModelStore, seed: int, cost: EnergyCost, **changes: object) -> str:
    data = model_bytes(seed)
    manifest = dataclasses.replace(manifest_for(data), **changes)
    return store.add(manifest, SIGNATURE, data, cost).sha256


def ledger(training_joules: float, scratch: bool = False) -> common_pb2.SupernetLedger:
    message = common_pb2.SupernetLedger(
        supernet_version=VERSION,
        activities=[
            common_pb2.ActivityCost(
                activity="training",
                detail="full",
                cost=common_pb2.EnergyCost(
                    cpu_seconds=training_joules / 10, energy_joules=training_joules, co2e_grams=1
                ),
            ),
            common_pb2.ActivityCost(
                activity="predictor_fit",
                cost=common_pb2.EnergyCost(cpu_seconds=2, energy_joules=20, co2e_grams=0.5),
            ),
        ],
        energy_model=common_pb2.EnergyModel(power_source="tdp-default", grid_g_per_kwh=400),
    )
    if scratch:
        message.scratch.cost_per_network.energy_joules = 5000
    return message


def test_a_models_specialization_cost_is_kept_and_summed(store: ModelStore) -> None:
    first = add(store, 1, EnergyCost(3.0, 30.0, 0.25))
    again = add(store, 2, EnergyCost(1.0, 10.0, 0.125))  # a re-specialization, a new model
    other = add(store, 3, EnergyCost(7.0, 70.0, 1.0), supernet_version="fedcba9876543210")
    assert store.record("raspberry-pi-4", first).cost == EnergyCost(3.0, 30.0, 0.25)
    assert store.specializations(VERSION) == [
        Specialization("raspberry-pi-4", first, VERSION, EnergyCost(3.0, 30.0, 0.25)),
        Specialization("raspberry-pi-4", again, VERSION, EnergyCost(1.0, 10.0, 0.125)),
    ]
    assert [s.sha256 for s in store.specializations("fedcba9876543210")] == [other]
    assert store.specialization_total() == EnergyCost(11.0, 110.0, 1.375)
    # The same bytes again (search's cache repeats the first search's cost): counted once.
    add(store, 1, EnergyCost(3.0, 30.0, 0.25))
    assert store.specialization_total() == EnergyCost(11.0, 110.0, 1.375)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_a_malformed_cost_is_refused_and_stores_nothing(store: ModelStore, bad: float) -> None:
    with pytest.raises(InvalidArgumentError, match="finite and not negative"):
        add(store, 1, EnergyCost(1.0, bad, 0.0))
    assert store.list_models().items == ()


def test_supernet_ledgers_are_kept_per_version_and_the_newest_is_current(
    store: ModelStore,
) -> None:
    ledgers = SupernetLedgers(store.database)
    assert ledgers.current() is None
    ledgers.save(VERSION, ledger(1000.0))
    time.sleep(0.002)
    ledgers.save("fedcba9876543210", None)  # a checkpoint trained before metering
    current = ledgers.current()
    assert current is not None and current.version == "fedcba9876543210"
    assert current.ledger is None
    kept = ledgers.get(VERSION)
    assert kept is not None and kept.ledger == ledger(1000.0)
    # Search serves the first one again, now with its scratch reference measured.
    time.sleep(0.002)
    ledgers.save(VERSION, ledger(1000.0, scratch=True))
    current = ledgers.current()
    assert current is not None and current.version == VERSION
    assert current.ledger is not None and current.ledger.scratch.cost_per_network.energy_joules
    totals = ledgers.activity_totals()
    assert totals["training"] == EnergyCost(100.0, 1000.0, 1.0)
    assert totals["predictor_fit"] == EnergyCost(2.0, 20.0, 0.5)
    with pytest.raises(InvalidArgumentError):
        ledgers.save("", None)


def test_the_carbon_counters_read_the_database_not_this_process(store: ModelStore) -> None:
    """A second collector (another replica, or this one restarted) reports the same."""
    SupernetLedgers(store.database).save(VERSION, ledger(1000.0))
    add(store, 1, EnergyCost(3.0, 30.0, 0.25))
    first = CarbonTotals(store, SupernetLedgers(store.database))
    restarted = CarbonTotals(store, SupernetLedgers(store.database))
    for collector in (first, restarted):
        samples = {
            (family.name, sample.labels["activity"]): sample.value
            for family in collector.collect()
            for sample in family.samples
        }
        assert samples[("ofa_fleet_energy_joules", "training")] == 1000.0
        assert samples[("ofa_fleet_energy_joules", "predictor_fit")] == 20.0
        assert samples[("ofa_fleet_energy_joules", "specialization")] == 30.0
        assert samples[("ofa_fleet_co2e_grams", "specialization")] == 0.25
        assert samples[("ofa_fleet_cpu_seconds", "specialization")] == 3.0
        assert ("ofa_fleet_energy_joules", "device_profiling") not in samples  # registry's


@pytest.mark.parametrize("kind", DATABASES)
def test_models_stored_before_the_cost_columns_existed_cost_zero(kind: str, tmp_path: Path):
    with database_url(kind, tmp_path) as url:
        database = Database(DatabaseUrl.parse(url), DELIVERY_MIGRATIONS)
        try:
            data = model_bytes(9)
            manifest = manifest_for(data)
            with migrated_up_to(database, "0002") as connection:
                connection.execute(
                    text(
                        "INSERT INTO models (sha256, size_bytes, profile_name, profile_revision,"
                        " supernet_version, arch, figures_json, manifest, signature, created_us)"
                        " VALUES (:sha, :size, 'raspberry-pi-4', 1, :version, :arch, '{}',"
                        " :manifest, :signature, 1)"
                    ),
                    {
                        "sha": manifest.sha256,
                        "size": manifest.size_bytes,
                        "version": VERSION,
                        "arch": manifest.arch,
                        "manifest": manifest.canonical_bytes(),
                        "signature": SIGNATURE,
                    },
                )
            database.migrate()
            store = ModelStore(database, blob_store("database", database, tmp_path / "blobs"))
            assert store.record(manifest.profile_name, manifest.sha256).cost == EnergyCost()
            assert store.specialization_total() == EnergyCost()
            assert SupernetLedgers(database).current() is None
        finally:
            database.close()
