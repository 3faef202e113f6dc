"""The demo's results: read from delivery's answers, printed, and written as JSON."""

from __future__ import annotations

import io

from rich.console import Console

from ofa_fleet.cli.demo_command import carbon_line, print_table
from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.fleet.summary import DeviceOutcome, SimulationSummary
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.stack.demo_fleets import DemoFleet
from ofa_fleet.stack.demo_results import DemoResult, carbon_summary, profile_result
from ofa_fleet.v1 import common_pb2, delivery_pb2, registry_pb2
from tests.registry.conftest import example_profile

SHA = "ab" * 32


def fleet(name: str = "raspberry-pi-4") -> DemoFleet:
    profile = registry_pb2.Profile(spec=profile_to_proto(example_profile(name)), revision=1)
    return DemoFleet(f"demo-{name}", profile, "token")


def served(index: int, sha256: str = SHA, latency_ms: float = 2.0) -> DeviceOutcome:
    return DeviceOutcome(index, f"d{index}", True, True, 1.0, sha256, latency_ms, 100, "", True)


def models_with(predicted_ms: float) -> delivery_pb2.GetProfileModelsResponse:
    manifest = Manifest(
        sha256=SHA,
        size_bytes=2048,
        profile_name="raspberry-pi-4",
        profile_revision=1,
        supernet_version="0123456789abcdef",
        arch="r32-k3-e3",
        created_us=1,
        figures={"predicted_latency_ms": predicted_ms, "measured_top1": 0.91, "macs": 4_000_000},
    )
    current = delivery_pb2.ModelManifest(canonical_manifest=manifest.canonical_bytes(), sha256=SHA)
    return delivery_pb2.GetProfileModelsResponse(current=current)


def ledger() -> delivery_pb2.GetCarbonLedgerResponse:
    cost = common_pb2.EnergyCost
    return delivery_pb2.GetCarbonLedgerResponse(
        training_total=cost(energy_joules=1000.0),
        fixed=cost(energy_joules=1200.0),
        once_for_all_total=cost(energy_joules=1500.0, co2e_grams=0.2),
        scratch_per_network=cost(energy_joules=900.0),
        counterfactual=cost(energy_joules=2700.0),
        ratio=delivery_pb2.PerUnit(energy_joules=1.8),
        profiles=[
            delivery_pb2.ProfileCarbon(
                profile_name="raspberry-pi-4", amortized=cost(energy_joules=450.0, co2e_grams=0.06)
            )
        ],
    )


def test_a_served_profile_has_its_signed_figures_devices_and_carbon_share() -> None:
    summary = SimulationSummary.of([served(0, latency_ms=2.0), served(1, latency_ms=4.0)], 3.0)
    row = profile_result(fleet(), models_with(3.5), summary, ledger())
    assert row.model is not None
    assert (row.devices, row.served, row.verified, row.measured_latency_ms) == (2, 2, 2, 3.0)
    assert (row.model.macs, row.model.top1, row.model.devices_on_current_model) == (4e6, 0.91, 2)
    assert row.model.within_budget  # 3.5 ms against the profile's 4 ms
    assert not profile_result(fleet(), models_with(4.5), summary, ledger()).model.within_budget
    assert (row.carbon.energy_joules, row.carbon.scratch_to_ofa_ratio) == (450.0, 2.0)
    assert set(row.to_json()) == {
        *("profile", "fleet", "devices", "served", "verified", "latency_budget_ms"),
        *("measured_latency_ms", "arch", "sha256", "supernet_version", "model_bytes", "macs"),
        *("predicted_latency_ms", "latency_source", "within_budget", "top1", "predicted_top1"),
        *("devices_on_current_model", "energy_joules", "co2e_grams", "scratch_to_ofa_ratio"),
    }


def test_a_profile_without_a_model_says_why_and_has_no_share() -> None:
    waiting = delivery_pb2.GetProfileModelsResponse(last_error="fastest subnet needs 9 ms")
    row = profile_result(fleet("x86-gateway"), waiting, None, ledger())
    assert row.model is None and row.error == "fastest subnet needs 9 ms"
    assert row.to_json()["arch"] == "" and row.to_json()["energy_joules"] is None
    silent = profile_result(fleet(), delivery_pb2.GetProfileModelsResponse(), None, ledger())
    assert silent.error == "no model yet"


def result(rows: list, carbon: delivery_pb2.GetCarbonLedgerResponse) -> DemoResult:
    return DemoResult(
        devices=3,
        served=2,
        verified=2,
        enrolled=3,
        bytes_downloaded=200,
        seconds_to_serve_all=3.0,
        errors={"timed out": 1},
        profiles=rows,
        carbon=carbon_summary(carbon),
        registry="127.0.0.1:1",
        delivery="127.0.0.1:2",
    )


def test_the_table_shows_every_profile_and_the_saving() -> None:
    summary = SimulationSummary.of([served(0), served(1)], 3.0)
    rows = [
        profile_result(fleet(), models_with(3.5), summary, ledger()),
        profile_result(
            fleet("x86-gateway"), delivery_pb2.GetProfileModelsResponse(), None, ledger()
        ),
    ]
    shown = result(rows, ledger())
    assert shown.missing == 1
    assert shown.to_json()["profiles"][1]["error"] == "no model yet"
    assert shown.to_json()["carbon"]["ratio"] == 1.8
    out = io.StringIO()
    print_table(shown, Console(file=out, width=200))
    text = out.getvalue()
    assert "2 of 3 devices served" in text and "4.00M" in text and "91.0%" in text
    assert "x86-gateway" in text and "no model yet" in text
    assert "2.70 kJ (1.80x)" in text


def test_without_a_scratch_reference_the_line_says_why() -> None:
    bare = delivery_pb2.GetCarbonLedgerResponse(
        once_for_all_total=common_pb2.EnergyCost(energy_joules=1500.0),
        counterfactual_unavailable_reason="no scratch reference measured",
    )
    line = carbon_line(carbon_summary(bare))
    assert line == (
        "once-for-all: 1.50 kJ, 0.000 g CO2e; no counterfactual (no scratch reference measured)"
    )
