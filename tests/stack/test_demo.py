"""`ofa-fleet demo`, the main job: servers, the example profiles, a served fleet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import load_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.integration]

PROFILES = {"raspberry-pi-3", "raspberry-pi-4", "x86-gateway"}


def run_demo(workdir: Path, checkpoint: Path, devices: int) -> dict:
    return demo_json(workdir, checkpoint, "--devices", str(devices), "--deadline-seconds", "400")


def demo_json(workdir: Path, checkpoint: Path, *flags: str) -> dict:
    """`ofa-fleet demo --json FLAGS` on ``workdir``. The session's supernet (with a small
    predictor, see tests/stack/conftest.py) stands in for the one the demo trains on
    first use: training here would add minutes and test nothing new."""
    result = subprocess.run(
        [
            *(sys.executable, "-m", "ofa_fleet.cli.main", "demo", "--json"),
            *("--workdir", str(workdir), "--checkpoint", str(checkpoint), *flags),
        ],
        capture_output=True,
        text=True,
        timeout=700,
        env={**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_demo_serves_every_device_its_profiles_model_and_reruns(
    stack_checkpoint: Path, tmp_path: Path
) -> None:
    checkpoint = load_checkpoint(stack_checkpoint)
    first = run_demo(tmp_path, stack_checkpoint, devices=7)
    assert (first["devices"], first["served"], first["verified"]) == (7, 7, 7)
    assert first["errors"] == {}
    assert first["enrolled"] == 7 and first["bytes_downloaded"] > 0
    rows = {row["profile"]: row for row in first["profiles"]}
    assert set(rows) == PROFILES
    assert sorted(row["devices"] for row in rows.values()) == [2, 2, 3]
    for row in rows.values():
        assert row["served"] == row["verified"] == row["devices"]
        assert row["devices_on_current_model"] == row["devices"]
        assert row["fleet"] == f"demo-{row['profile']}"
        ArchConfig.parse(row["arch"], checkpoint.space)  # a subnet of this very supernet
        assert row["supernet_version"] == checkpoint.version
        assert row["macs"] > 0 and row["model_bytes"] > 0
        assert row["predicted_latency_ms"] > 0
        assert row["within_budget"] == (row["predicted_latency_ms"] <= row["latency_budget_ms"])
        assert row["measured_latency_ms"] > 0
        assert 0 < row["top1"] <= 1
        # Its share of training once plus its own search, and the scratch net it spared.
        assert row["energy_joules"] > 0 and row["co2e_grams"] > 0
        assert row["scratch_to_ofa_ratio"] > 0
    carbon = first["carbon"]
    assert carbon["training_joules"] > 0 and carbon["fixed_joules"] > carbon["training_joules"]
    shares = sum(row["energy_joules"] for row in rows.values())
    # Every profile's share together is the fixed cost plus every search: at most the
    # whole, which adds the devices' profiling (figures are rounded to 0.1 J).
    assert shares <= carbon["once_for_all_joules"] + 0.5
    assert carbon["scratch_per_network_joules"] > 0
    assert carbon["counterfactual_joules"] > 3 * carbon["scratch_per_network_joules"]
    assert carbon["ratio"] == pytest.approx(
        carbon["counterfactual_joules"] / carbon["once_for_all_joules"], abs=1e-3
    )  # rounded to three decimals
    # Each profile's own budget shaped its model: not all three got the same subnet.
    assert len({row["arch"] for row in rows.values()}) > 1

    # Again on the same workdir: profiles, fleets, tokens, devices and models are reused.
    tokens = (tmp_path / "fleet-tokens.json").read_text()
    second = run_demo(tmp_path, stack_checkpoint, devices=7)
    assert (second["served"], second["verified"]) == (7, 7)
    assert (second["enrolled"], second["bytes_downloaded"]) == (0, 0)
    assert {r["profile"]: r["sha256"] for r in second["profiles"]} == {
        p: r["sha256"] for p, r in rows.items()
    }
    assert (tmp_path / "fleet-tokens.json").read_text() == tokens
