"""`ofa-fleet fleet simulate` as a real process against a registry and delivery on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.agent.fleet import Fleet, sha256
from tests.cli_runner import ofa_fleet
from tests.fleet.conftest import empty_fleet_token

pytestmark = pytest.mark.integration


def simulate(fleet: Fleet, root: Path, *extra: str) -> list[str]:
    return [
        "fleet", "simulate",
        "--registry", fleet.registry.address,
        "--delivery", fleet.delivery_address,
        "--state-root", str(root),
        *extra,
    ]  # fmt: skip


def test_simulate_prints_a_summary_and_a_rerun_reuses_the_devices(
    fleet: Fleet, model: bytes, tmp_path: Path
) -> None:
    root = tmp_path / "fleet"
    args = simulate(fleet, root, "--fleet-token", fleet.token, "--devices", "5")
    first = json.loads(ofa_fleet(*args, "--concurrency", "2", "--json").stdout)
    assert (first["devices"], first["booted"], first["verified"], first["failed"]) == (5, 5, 5, 0)
    assert first["bytes_downloaded"] == 5 * len(model)
    assert {o["model_sha256"] for o in first["outcomes"]} == {sha256(model)}
    assert len({o["device_id"] for o in first["outcomes"]}) == 5

    table = ofa_fleet(*args)
    assert "booted" in table.stdout and "p99" in table.stdout
    assert len(fleet.devices()) == 5


def test_simulate_ends_non_zero_with_one_line_when_devices_fail(
    fleet: Fleet, tmp_path: Path
) -> None:
    token = empty_fleet_token(fleet)
    args = simulate(fleet, tmp_path / "fleet", "--devices", "2", "--deadline", "2", "--json")
    failed = ofa_fleet(*args, "--fleet-token", token, check=False)
    assert failed.returncode == 2
    summary = json.loads(failed.stdout)
    assert (summary["booted"], summary["failed"]) == (0, 2)
    error = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert "2 of 2 devices have no model" in error[0] and "deadline" in error[0]

    missing = ofa_fleet("fleet", "simulate", "--devices", "1", check=False)
    assert missing.returncode == 2 and "--fleet-token" in missing.stderr
