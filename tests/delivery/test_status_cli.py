"""`ofa-fleet status` as an operator runs it: a real process against real servers, one of
them down."""

from __future__ import annotations

import json
import socket

import pytest

from tests.cli_runner import ofa_fleet
from tests.delivery.conftest import manifest_for, model_bytes
from tests.delivery.test_metrics import report
from tests.delivery.world import PROFILE, World
from tests.server_process import OPERATOR_TOKEN

pytestmark = pytest.mark.integration


def test_status_shows_services_profiles_fleets_coverage_and_specializations(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("OFA_FLEET_OPERATOR_TOKEN", OPERATOR_TOKEN)
    data = model_bytes(1, 5_000)
    manifest = manifest_for(data, PROFILE, latency_ms=1.25, top1=0.875, latency_source="lut")
    world.store.add(manifest, world.signer.sign(manifest), data)
    world.store.set_current(PROFILE, manifest.sha256, "missing")
    sha = world.get_manifest(0).manifest.sha256
    report(world, 0, sha, 1.0)
    with socket.socket() as closed:  # a port nothing listens on: search is down
        closed.bind(("127.0.0.1", 0))
        search = f"127.0.0.1:{closed.getsockname()[1]}"
    addresses = ("--registry", world.registry_address, "--delivery", world.delivery_address)
    result = ofa_fleet(
        "status", *addresses, "--search", search, "--timeout", "2", "--json", check=False
    )
    status = json.loads(result.stdout)
    # What it saw is printed all the same; the exit code says something is wrong.
    assert result.returncode == 3, result.stderr
    assert status["problems"] == [f"search at {search} is down"]
    assert "1 problem(s): search at" in result.stderr
    assert {n: s["status"] for n, s in status["services"].items()} == {
        "registry": "serving",
        "search": "down",
        "delivery": "serving",
    }
    (profile,) = status["profiles"]
    assert (profile["name"], profile["model"]) == (PROFILE, sha)
    assert profile["latency_source"] == "lut"  # as the model's signed manifest says
    (fleet,) = status["fleets"]
    assert (fleet["name"], fleet["devices"], fleet["reported"]) == ("pis", 2, 1)
    assert fleet["rollout"] == "auto-latest"  # as --rollout spells it
    assert (fleet["on_current_model"], fleet["coverage"]) == (1, 0.5)
    (latest,) = status["recent_specializations"]
    assert (latest["profile"], latest["sha256"], latest["reason"]) == (PROFILE, sha, "missing")
    assert status["errors"] == []

    # Without --json: one screen of tables, the down service named.
    shown = ofa_fleet("status", *addresses, "--search", search, "--timeout", "2", check=False)
    assert "down" in shown.stdout and "pis" in shown.stdout and "50%" in shown.stdout
    assert shown.returncode == 3


def test_status_with_the_registry_down_still_answers(world: World, monkeypatch):
    monkeypatch.setenv("OFA_FLEET_OPERATOR_TOKEN", OPERATOR_TOKEN)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{closed.getsockname()[1]}"
    result = ofa_fleet(
        "status", "--registry", nowhere, "--search", nowhere, "--delivery",
        world.delivery_address, "--timeout", "2", "--json", check=False,
    )  # fmt: skip
    status = json.loads(result.stdout)
    assert status["services"]["registry"]["status"] == "down"
    assert status["profiles"] == [] and status["fleets"] == []
    assert result.returncode == 3 and len(status["problems"]) == 2


def test_status_with_a_wrong_token_fails_with_the_reason(world: World, monkeypatch):
    monkeypatch.setenv("OFA_FLEET_OPERATOR_TOKEN", "w" * 32)  # not the servers' token
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{closed.getsockname()[1]}"
    result = ofa_fleet(
        "status", "--registry", world.registry_address, "--search", nowhere, "--delivery",
        world.delivery_address, "--timeout", "2", "--json", check=False,
    )  # fmt: skip
    status = json.loads(result.stdout)
    assert result.returncode == 3
    assert any("UNAUTHENTICATED" in problem for problem in status["problems"])
