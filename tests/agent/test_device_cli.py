"""`ofa-fleet device run` as a real process against a registry and delivery on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ofa_fleet.agent.install import ModelDirectory
from tests.agent.fleet import Fleet
from tests.cli_runner import ofa_fleet

pytestmark = pytest.mark.slow


def device_run(fleet: Fleet, state: Path, *extra: str) -> list[str]:
    return [
        "device", "run",
        "--registry", fleet.registry.address,
        "--delivery", fleet.delivery_address,
        "--fleet-token", fleet.token,
        "--state", str(state),
        "--hardware-id", "cli-device",
        *extra,
    ]  # fmt: skip


def test_device_run_once_boots_and_prints_what_it_did(
    fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    sha = fleet.publish(model_a)
    state = tmp_path / "device"
    first = json.loads(ofa_fleet(*device_run(fleet, state, "--once", "--json")).stdout)
    assert first["enrolled"] and first["model_sha256"] == sha
    assert first["bytes_downloaded"] == len(model_a) and first["resumed_from"] == 0
    assert first["latency_ms"] > 0 and first["threads"] == 1
    assert 0 < first["seconds_to_model"] <= first["seconds_total"]
    assert first["input_shape"] == [1, 3, 16, 16] and first["errors"] == []
    assert fleet.device(first["device_id"]).status.model_sha256 == sha

    second = json.loads(ofa_fleet(*device_run(fleet, state, "--once", "--json")).stdout)
    assert second["device_id"] == first["device_id"] and not second["enrolled"]
    assert second["up_to_date"] and second["bytes_downloaded"] == 0


def test_a_running_agent_holds_its_state_and_stops_cleanly_on_sigterm(
    fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    sha = fleet.publish(model_a)
    state = tmp_path / "device"
    args = device_run(fleet, state, "--heartbeat-seconds", "0.2", "--json")
    agent = subprocess.Popen(
        [sys.executable, "-m", "ofa_fleet.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        assert agent.stderr is not None
        events: list[dict] = []
        for line in agent.stderr:
            events.append(json.loads(line))
            if events[-1]["event"] == "model running":
                break
        assert events[-1]["model_sha256"] == sha
        assert ModelDirectory(state).installed() is not None

        second = ofa_fleet(*device_run(fleet, state, "--once"), check=False)
        assert second.returncode == 2
        assert second.stderr.strip().count("\n") == 0
        assert f"in use by another agent (pid {agent.pid})" in second.stderr

        time.sleep(0.5)  # a heartbeat or two
        agent.send_signal(signal.SIGTERM)
        out, _ = agent.communicate(timeout=20)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0
    result = json.loads(out)
    assert result["stopped_by"] == "SIGTERM" and result["heartbeats"] >= 1
    assert result["model_sha256"] == sha


def test_an_unenrolled_device_without_a_token_is_one_line_error(tmp_path: Path) -> None:
    result = ofa_fleet(
        "device", "run", "--delivery", "127.0.0.1:1", "--state", str(tmp_path / "s"),
        "--once", check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: this device is not enrolled yet")
    assert "--fleet-token" in result.stderr and result.stderr.count("\n") == 1


def test_a_single_boot_gives_up_at_its_deadline_against_a_wrong_address(tmp_path: Path) -> None:
    result = ofa_fleet(
        "device", "run", "--registry", "127.0.0.1:1", "--delivery", "127.0.0.1:1",
        "--fleet-token", "ofa_enrol_" + "0" * 43, "--state", str(tmp_path / "s"),
        "--once", "--deadline", "1.5", check=False,
    )  # fmt: skip
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no model running after --deadline 1.5 s")
    assert '"retrying"' in result.stderr  # each failed attempt was logged before it
    refused = ofa_fleet(
        "device", "run", "--delivery", "127.0.0.1:1", "--state", str(tmp_path / "s"),
        "--deadline", "5", check=False,
    )  # fmt: skip
    assert refused.returncode == 2 and "give it with --once" in refused.stderr
