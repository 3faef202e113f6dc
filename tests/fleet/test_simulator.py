"""The fleet simulator against a real registry and delivery on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ofa_fleet.agent.app_interface import LINK_NAME
from ofa_fleet.agent.identity import identity_path
from ofa_fleet.agent.runner import AgentResult
from ofa_fleet.fleet.simulator import SimulationSettings, follow_fleet, simulate_fleet
from ofa_fleet.fleet.summary import DeviceOutcome, SimulationSummary, nearest_rank
from tests.agent.fleet import Fleet, sha256
from tests.agent.onnx_models import tiny_onnx
from tests.fleet.conftest import empty_fleet_token, settings

DEVICES = 20


def test_simulated_devices_boot_verify_and_a_rerun_reuses_them(
    fleet: Fleet, model: bytes, tmp_path: Path
) -> None:
    root = tmp_path / "fleet"
    seen: list[DeviceOutcome] = []
    cpu = time.process_time()
    first = asyncio.run(simulate_fleet(settings(fleet, root, DEVICES), seen.append))
    cpu = time.process_time() - cpu

    assert (first.booted, first.verified, first.failed) == (DEVICES, DEVICES, 0)
    assert first.devices == DEVICES
    assert sorted(o.index for o in seen) == list(range(DEVICES))
    assert [o.index for o in first.outcomes] == list(range(DEVICES))
    ids = [o.device_id for o in first.outcomes]
    assert len(set(ids)) == DEVICES and all(ids)
    assert all(o.model_sha256 == sha256(model) and o.enrolled for o in first.outcomes)
    assert all(o.latency_ms > 0 and o.error == "" for o in first.outcomes)
    assert first.bytes_downloaded == DEVICES * len(model)
    assert 0 < first.p50_seconds <= first.p99_seconds <= first.wall_seconds
    registered = {d.id: d for d in fleet.devices()}
    assert set(registered) == set(ids)
    assert {registered[i].hardware_id for i in ids} == {f"sim-{n:05d}" for n in range(DEVICES)}
    assert all(registered[i].status.model_sha256 == sha256(model) for i in ids)
    assert all(identity_path(root / f"device-{n:05d}").is_file() for n in range(DEVICES))
    # Each device's profiling is its own smoke-test thread's CPU time: all of them together
    # fit in what this process spent (process-wide meters would count each other's work).
    profiling = [registered[i].profiling_cost_total.cpu_seconds for i in ids]
    assert all(seconds > 0 for seconds in profiling)
    assert sum(profiling) < cpu

    # Again over the same root, a few at a time, each device on connections of its own.
    again = asyncio.run(
        simulate_fleet(settings(fleet, root, DEVICES, concurrency=4, own_connections=True))
    )
    assert (again.booted, again.verified, again.failed) == (DEVICES, DEVICES, 0)
    assert [o.device_id for o in again.outcomes] == ids
    assert not any(o.enrolled for o in again.outcomes)
    assert again.bytes_downloaded == 0
    assert len(fleet.devices()) == DEVICES  # nobody enrolled twice


def test_devices_without_a_model_by_the_deadline_fail_with_what_they_waited_for(
    fleet: Fleet, tmp_path: Path
) -> None:
    token = empty_fleet_token(fleet)
    summary = asyncio.run(
        simulate_fleet(
            settings(fleet, tmp_path / "fleet", 3, fleet_token=token, deadline_seconds=2.5)
        )
    )
    assert (summary.booted, summary.verified, summary.failed) == (0, 0, 3)
    assert summary.p50_seconds == summary.p99_seconds == 0.0
    for outcome in summary.outcomes:
        assert not outcome.ok and not outcome.verified
        assert "no model within the 2.5 s deadline" in outcome.error
        assert "delivery GetModelManifest" in outcome.error  # what it was waiting on
    assert sum(summary.errors().values()) == 3


def test_one_failing_device_does_not_stop_the_others(
    fleet: Fleet, model: bytes, tmp_path: Path
) -> None:
    root = tmp_path / "fleet"
    damaged = identity_path(root / "device-00002")
    damaged.parent.mkdir(parents=True)
    damaged.write_text("not json")
    summary = asyncio.run(simulate_fleet(settings(fleet, root, 4)))
    assert (summary.booted, summary.verified, summary.failed) == (3, 3, 1)
    failed = summary.outcomes[2]
    assert not failed.ok and "identity file" in failed.error and failed.device_id == ""
    assert summary.errors() == {failed.error: 1}
    assert summary.bytes_downloaded == 3 * len(model)


def test_percentiles_are_taken_by_nearest_rank_over_booted_devices() -> None:
    assert nearest_rank([], 50) == 0.0
    values = [float(v) for v in range(1, 101)]
    assert nearest_rank(values, 50) == 50.0 and nearest_rank(values, 99) == 99.0
    assert nearest_rank([3.0], 99) == 3.0
    outcomes = [
        DeviceOutcome(0, "a", True, True, 1.0, "s", 0.1, 10, ""),
        DeviceOutcome(1, "", False, False, 0.0, "", 0.0, 0, "down"),
        DeviceOutcome(2, "c", True, False, 3.0, "s", 0.1, 5, "bad file"),
    ]
    summary = SimulationSummary.of(list(reversed(outcomes)), 4.0)
    assert (summary.booted, summary.verified, summary.failed) == (2, 1, 1)
    assert (summary.p50_seconds, summary.p99_seconds) == (1.0, 3.0)
    data = summary.to_dict()
    assert data["bytes_downloaded"] == 15 and [o["index"] for o in data["outcomes"]] == [0, 1, 2]
    assert data["errors"] == {"down": 1, "bad file": 1}


def test_following_devices_take_a_new_model_and_stop_when_told(
    fleet: Fleet, model: bytes, tmp_path: Path
) -> None:
    """`follow_fleet`: devices run on after their boot, as daemons do, and a model made
    while they run reaches every one of them; then they stop, cleanly, together."""
    newer = tiny_onnx(2)
    turns = threading.Lock()  # devices time in turns, as the closed-loop demo has them
    run_settings = dataclasses.replace(settings(fleet, tmp_path / "fleet", 3), timing_turns=turns)

    async def follow() -> list[AgentResult | BaseException]:
        until = asyncio.Event()
        following = asyncio.create_task(follow_fleet(run_settings, until))
        await _until(lambda: _all_report(fleet, sha256(model), 3))
        await asyncio.to_thread(fleet.publish, newer)
        await _until(lambda: _all_report(fleet, sha256(newer), 3))
        # The registry hears of the update before its device is done with it.
        await _until(lambda: _all_linked(run_settings, sha256(newer)))
        until.set()
        return await following

    results = asyncio.run(follow())
    assert all(isinstance(r, AgentResult) for r in results), results
    for result in results:
        assert isinstance(result, AgentResult)
        assert result.stopped_by == "end of simulation"
        assert result.boot.model_sha256 == sha256(model)
        assert [u.model_sha256 for u in result.updates] == [sha256(newer)]


def _all_linked(run_settings: SimulationSettings, sha: str) -> bool:
    """Every device's application link names the model: its agent has recorded it."""
    links = [run_settings.state_dir(i) / LINK_NAME for i in range(run_settings.devices)]
    return all(link.is_symlink() and sha in link.readlink().name for link in links)


def _all_report(fleet: Fleet, sha: str, devices: int) -> bool:
    reported = [d.status.model_sha256 for d in fleet.devices()]
    return len(reported) == devices and set(reported) == {sha}


async def _until(done: Callable[[], bool], seconds: float = 60.0) -> None:
    give_up = time.monotonic() + seconds
    while not await asyncio.to_thread(done):
        assert time.monotonic() < give_up, "not within a minute"
        await asyncio.sleep(0.1)
