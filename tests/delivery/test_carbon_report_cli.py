"""`ofa-fleet carbon report` as an operator runs it: a real process against real servers."""

from __future__ import annotations

import json

import pytest

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.delivery.store.supernet_ledgers import SupernetLedgers
from tests.cli_runner import ofa_fleet
from tests.delivery.conftest import manifest_for, model_bytes
from tests.delivery.test_carbon_ledger import VERSION, cost, report, supernet_ledger
from tests.delivery.world import PROFILE, World
from tests.server_process import OPERATOR_TOKEN

pytestmark = pytest.mark.integration


@pytest.fixture
def served(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The world with a supernet ledger, one model and two devices that reported."""
    monkeypatch.setenv("OFA_FLEET_DELIVERY", world.delivery_address)
    monkeypatch.setenv("OFA_FLEET_OPERATOR_TOKEN", OPERATOR_TOKEN)
    SupernetLedgers(world.store.database).save(VERSION, supernet_ledger(scratch=True))
    data = model_bytes(1, 20_000)
    manifest = manifest_for(data, PROFILE)
    world.store.add(manifest, world.signer.sign(manifest), data, EnergyCost(4.0, 40.0, 0.4))
    world.store.set_current(PROFILE, manifest.sha256, "missing")
    report(world, 0, manifest.sha256, cost(1, 10, 0.1))
    report(world, 1, "0" * 64, cost(2, 20, 0.2))
    return world


def test_report_json_is_the_ledger_and_the_table_says_the_ratio(served: World) -> None:
    result = json.loads(ofa_fleet("carbon", "report", "--json").stdout)
    assert result["supernet_version"] == VERSION
    assert result["once_for_all_total"]["energy_joules"] == pytest.approx(1070)
    assert result["counterfactual"]["energy_joules"] == pytest.approx(2030)
    assert result["ratio"]["energy_joules"] == pytest.approx(2030 / 1070)
    assert [f["fleet_name"] for f in result["fleets"]] == ["pis"]
    assert result["counterfactual_unavailable_reason"] == ""

    table = " ".join(ofa_fleet("carbon", "report").stdout.split())  # unwrapped
    assert "training: full" in table and "predictor fit" in table
    assert "1.90x the energy of training once" in table
    assert "breaks even at 0.5 profiles" in table


def test_report_for_a_fleet_and_for_a_fleet_that_does_not_exist(served: World) -> None:
    narrowed = json.loads(ofa_fleet("carbon", "report", "--fleet", "pis", "--json").stdout)
    assert [f["fleet_name"] for f in narrowed["fleets"]] == ["pis"]
    assert narrowed["fleets"][0]["served_devices"] == 1
    missing = ofa_fleet("carbon", "report", "--fleet", "nope", check=False)
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "nope" in missing.stderr
