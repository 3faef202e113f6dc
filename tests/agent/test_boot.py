"""The agent's boot path against a real registry and delivery on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import threading
import time
from pathlib import Path

import onnxruntime as ort
import pytest

from ofa_fleet.agent.backoff import TransientError
from ofa_fleet.agent.identity import identity_path
from ofa_fleet.agent.install import ModelDirectory
from ofa_fleet.agent.pending import pending_path
from ofa_fleet.agent.runner import Agent, AgentResult
from ofa_fleet.agent.state_lock import state_lock
from ofa_fleet.agent.trust import key_path
from ofa_fleet.contract.error_details import PROFILE_INFEASIBLE
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.delivery.store.specializations import Specializations
from ofa_fleet.errors import FailedPreconditionError, IntegrityError, RemoteCallError
from tests.agent.conftest import HEARTBEAT_SECONDS
from tests.agent.fleet import CHUNK, PROFILE, Fleet, free_port, sha256
from tests.delivery.server_thread import DeliveryServerThread


class DownloadKilledError(Exception):
    """Raised by a chunk hook: the agent dies mid-download."""


def installed_sha(state: Path) -> str | None:
    installed = ModelDirectory(state).installed()
    return installed.manifest.sha256 if installed else None


def test_first_boot_enrols_downloads_verifies_installs_runs_and_reports(
    fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    sha = fleet.publish(model_a)
    state = tmp_path / "device"
    started = time.monotonic()
    report = fleet.boot(state).boot
    elapsed = time.monotonic() - started

    assert report.enrolled and report.fleet == "pis"
    assert report.model_sha256 == sha and not report.up_to_date
    assert report.bytes_downloaded == len(model_a) and report.resumed_from == 0
    assert report.input_shape == (1, 3, 16, 16) and report.latency_ms > 0
    assert 0 < report.seconds_to_model <= report.seconds_total <= elapsed
    assert report.errors == []
    assert installed_sha(state) == sha
    assert (ModelDirectory(state).model_path(sha)).read_bytes() == model_a

    identity = json.loads(identity_path(state).read_text())
    assert identity["device_id"] == report.device_id and identity["device_token"]
    assert stat.S_IMODE(identity_path(state).stat().st_mode) == 0o600
    assert key_path(state).read_bytes() == fleet.signer.public_key_pem
    assert not pending_path(state).exists()

    device = fleet.device(report.device_id)
    assert device.hardware_id == "test-device" and device.fleet == "pis"
    assert device.status.model_sha256 == sha
    assert device.status.measured_latency_ms == pytest.approx(report.latency_ms)
    assert device.status.onnxruntime_version == ort.__version__
    assert list(device.status.errors) == []
    assert fleet.registry.server is not None  # the registry observed the boot's figure
    metrics = fleet.registry.server.metrics.registry
    boots = metrics.get_sample_value("ofa_fleet_boot_to_model_seconds_sum")
    assert boots == pytest.approx(report.seconds_to_model)
    # Loading, smoke-testing and timing the model drew CPU time, metered and reported.
    spent = report.profiling_cost
    assert spent is not None and spent.cpu_seconds > 0 and spent.joules > 0
    total = device.profiling_cost_total
    assert (total.cpu_seconds, total.energy_joules, total.co2e_grams) == pytest.approx(
        (spent.cpu_seconds, spent.joules, spent.co2e_grams)
    )
    profiling = {"activity": "device_profiling"}
    counted = metrics.get_sample_value("ofa_fleet_cpu_seconds_total", profiling)
    assert counted == pytest.approx(spent.cpu_seconds)


def test_a_second_boot_reuses_the_identity_and_is_up_to_date(
    fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    sha = fleet.publish(model_a)
    state = tmp_path / "device"
    first = fleet.boot(state).boot
    first_report_time = fleet.device(first.device_id).status.report_time.ToMicroseconds()

    second = fleet.boot(state, fleet_token=None).boot  # no token needed any more
    assert second.device_id == first.device_id and not second.enrolled
    assert second.up_to_date and second.bytes_downloaded == 0
    assert second.model_sha256 == sha and second.latency_ms > 0
    assert len(fleet.devices()) == 1  # never enrolled again
    status = fleet.device(first.device_id).status
    assert status.model_sha256 == sha
    assert status.report_time.ToMicroseconds() > first_report_time


def test_a_new_model_replaces_the_old_one_and_keeps_it_for_rollback(
    fleet: Fleet, model_a: bytes, model_b: bytes, tmp_path: Path
) -> None:
    state = tmp_path / "device"
    old = fleet.publish(model_a)
    fleet.boot(state)
    new = fleet.publish(model_b, seed=1)
    report = fleet.boot(state).boot
    assert report.model_sha256 == new and report.bytes_downloaded == len(model_b)
    directory = ModelDirectory(state)
    previous = directory.previous()
    assert installed_sha(state) == new and previous is not None
    assert previous.manifest.sha256 == old


def test_an_interrupted_download_resumes_and_transfers_only_the_rest(
    fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    sha = fleet.publish(model_a)
    state = tmp_path / "device"
    chunks = 0

    def die_after_three(on_disk: int, total: int) -> None:
        nonlocal chunks
        chunks += 1
        if chunks == 3:
            raise DownloadKilledError(f"killed at {on_disk} of {total}")

    with pytest.raises(DownloadKilledError):
        fleet.boot(state, on_chunk=die_after_three)
    assert installed_sha(state) is None
    assert ModelDirectory(state).partial_size(sha) == 3 * CHUNK

    report = fleet.boot(state).boot
    assert report.resumed_from == 3 * CHUNK
    assert report.bytes_downloaded == len(model_a) - 3 * CHUNK
    assert report.model_sha256 == sha and installed_sha(state) == sha
    assert not pending_path(state).exists()


def test_a_stream_cut_mid_download_is_resumed_within_the_same_boot(
    fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    sha = fleet.publish(model_a)
    cuts: list[int] = []

    def cut_once(on_disk: int, total: int) -> None:
        if on_disk == 3 * CHUNK and not cuts:
            cuts.append(on_disk)
            raise TransientError("stream cut")  # as a dropped connection would

    report = fleet.boot(tmp_path / "device", on_chunk=cut_once).boot
    assert cuts == [3 * CHUNK] and report.model_sha256 == sha
    assert report.bytes_downloaded == len(model_a)  # every byte once, none twice
    assert report.resumed_from == 3 * CHUNK


def test_a_model_signed_by_another_key_is_refused_and_the_previous_one_stays(
    fleet: Fleet, model_a: bytes, model_b: bytes, tmp_path: Path
) -> None:
    state = tmp_path / "device"
    good = fleet.publish(model_a)
    device_id = fleet.boot(state).boot.device_id
    forger = ModelSigner.load_or_create(tmp_path / "forger.key")
    forged = fleet.publish(model_b, signer=forger, seed=1)

    with pytest.raises(IntegrityError, match="signature does not verify") as refused:
        fleet.boot(state)
    assert f"still running model {good}" in str(refused.value)
    assert installed_sha(state) == good
    assert not ModelDirectory(state).model_path(forged).exists()
    assert ModelDirectory(state).partial_size(forged) == 0  # refused before a byte came
    status = fleet.device(device_id).status
    assert status.model_sha256 == good and status.measured_latency_ms > 0
    assert "does not verify" in status.errors[0]


def test_a_delivery_presenting_another_key_is_refused(
    fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    state = tmp_path / "device"
    good = fleet.publish(model_a)
    fleet.boot(state)
    with (
        DeliveryServerThread(
            fleet.store, tmp_path / "other.key", fleet.registry.address, CHUNK
        ) as impostor,
        pytest.raises(IntegrityError, match="this device trusts only") as refused,
    ):
        fleet.boot(state, delivery=impostor.address)
    assert impostor.signer.key_id in str(refused.value)
    assert installed_sha(state) == good
    assert key_path(state).read_bytes() == fleet.signer.public_key_pem


def test_a_model_damaged_on_disk_is_downloaded_again(
    fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    sha = fleet.publish(model_a)
    state = tmp_path / "device"
    fleet.boot(state)
    path = ModelDirectory(state).model_path(sha)
    path.chmod(0o644)
    path.write_bytes(model_a[:-1] + bytes([model_a[-1] ^ 1]))
    report = fleet.boot(state).boot
    assert not report.up_to_date and report.bytes_downloaded == len(model_a)
    assert path.read_bytes() == model_a


def test_a_model_that_does_not_run_is_rolled_back(
    fleet: Fleet, model_a: bytes, broken_model: bytes, tmp_path: Path
) -> None:
    state = tmp_path / "device"
    good = fleet.publish(model_a)
    device_id = fleet.boot(state).boot.device_id
    first_profiling = fleet.device(device_id).profiling_cost_total.cpu_seconds
    fleet.publish(broken_model, seed=1)
    with pytest.raises(FailedPreconditionError, match="non-finite") as failed:
        fleet.boot(state)
    assert f"rolled back to model {good}" in str(failed.value)
    assert installed_sha(state) == good
    device = fleet.device(device_id)
    status = device.status
    assert status.model_sha256 == good and "non-finite" in status.errors[0]
    # The failed model's smoke test and the rolled-back one's both count.
    assert device.profiling_cost_total.cpu_seconds > first_profiling > 0


def test_the_agent_waits_with_backoff_for_a_delivery_that_is_down(
    fleet_without_delivery: Fleet, model_a: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = fleet_without_delivery
    sha = fleet.publish(model_a)
    port = free_port()
    results: list[AgentResult] = []
    agent = Agent(fleet.config(tmp_path / "device", delivery=f"127.0.0.1:{port}"))
    caplog.set_level(logging.WARNING, logger="ofa_fleet.agent")
    runner = threading.Thread(target=lambda: results.append(asyncio.run(agent.run(once=True))))
    runner.start()
    time.sleep(1.0)
    assert not results  # still waiting
    with DeliveryServerThread(
        fleet.store, fleet.key_path, fleet.registry.address, CHUNK, port=port
    ):
        runner.join(timeout=20)
        assert not runner.is_alive()
    assert results[0].boot.model_sha256 == sha
    retries = [r for r in caplog.records if r.getMessage() == "retrying"]
    assert len(retries) >= 3
    assert all(getattr(r, "call", "") == "delivery GetSigningKey" for r in retries)
    assert all(r.retry_in_s <= 0.4 for r in retries)  # type: ignore[attr-defined]


def test_the_agent_watches_for_a_model_its_profile_does_not_have_yet(
    fleet: Fleet, model_a: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ofa_fleet.agent")
    timer = threading.Timer(1.0, fleet.publish, args=(model_a,))
    timer.start()
    try:
        report = fleet.boot(tmp_path / "device", download_seconds=60).boot
    finally:
        timer.join()
    assert report.model_sha256 == sha256(model_a)
    waits = [r for r in caplog.records if r.getMessage() == "waiting for a model"]
    assert len(waits) == 1 and "no model yet" in waits[0].error  # type: ignore[attr-defined]
    # Told by WatchModel the moment the model was published: no retry was needed.
    assert not [r for r in caplog.records if r.getMessage() == "retrying"]


def test_the_agent_retries_as_delivery_asks_when_its_watch_ends_without_a_model(
    fleet: Fleet, model_a: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ofa_fleet.agent")
    timer = threading.Timer(1.0, fleet.publish, args=(model_a,))
    timer.start()
    try:
        # Each watch ends at its 0.5 s deadline, before the model exists.
        report = fleet.boot(tmp_path / "device", download_seconds=0.5).boot
    finally:
        timer.join()
    assert report.model_sha256 == sha256(model_a)
    retries = [r for r in caplog.records if r.getMessage() == "retrying"]
    assert retries and all(r.call == "delivery GetModelManifest+ReadModel" for r in retries)  # type: ignore[attr-defined]
    assert "UNAVAILABLE" in retries[0].error and "no model yet" in retries[0].error  # type: ignore[attr-defined]
    # Paced by the server's RetryInfo (5 s, plus up to a quarter), not the agent's own
    # backoff (which would start at 0.5 s).
    assert all(5.0 <= r.retry_in_s <= 6.25 for r in retries)  # type: ignore[attr-defined]


def test_a_single_boot_is_told_at_once_that_no_model_fits_its_profile(
    fleet: Fleet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ofa_fleet.agent")
    why = "latency: the fastest subnet needs 9.161 ms, the budget is 0.05 ms"
    Specializations(fleet.store.database).mark_infeasible(PROFILE, 1, "v1", why)
    with pytest.raises(RemoteCallError) as told:
        fleet.boot(tmp_path / "device", download_seconds=600, wait_while_infeasible=False)
    assert told.value.code == "FAILED_PRECONDITION"
    assert told.value.reason == PROFILE_INFEASIBLE and why in str(told.value)
    said = [r for r in caplog.records if r.getMessage() == "no model fits this device's profile"]
    assert len(said) == 1 and why in said[0].error  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.getMessage() == "retrying"]


def test_a_running_agent_waits_for_its_infeasible_profile_to_get_a_model(
    fleet: Fleet, model_a: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ofa_fleet.agent")
    Specializations(fleet.store.database).mark_infeasible(PROFILE, 1, "v1", "no subnet fits")
    timer = threading.Timer(1.0, fleet.publish, args=(model_a,))  # the operator fixed it
    timer.start()
    try:
        report = fleet.boot(tmp_path / "device", download_seconds=60).boot
    finally:
        timer.join()
    assert report.model_sha256 == sha256(model_a)
    said = [r for r in caplog.records if r.getMessage() == "no model fits this device's profile"]
    assert len(said) == 1  # then it watched, and was told of the model at once


def test_two_agents_never_share_a_state_directory(
    fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    fleet.publish(model_a)
    state = tmp_path / "device"
    with state_lock(state), pytest.raises(FailedPreconditionError, match="in use by another agent"):
        fleet.boot(state)
    assert not identity_path(state).exists()  # refused before enrolling
    fleet.boot(state)  # once the other one is gone


def test_a_running_agent_heartbeats_as_often_as_the_registry_says_until_stopped(
    fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    fleet.publish(model_a)
    # Its own setting (an hour) holds only until the registry names its interval (0.2 s).
    agent = Agent(fleet.config(tmp_path / "device", heartbeat_seconds=3600))
    results: list[AgentResult] = []
    runner = threading.Thread(target=lambda: results.append(asyncio.run(agent.run())))
    runner.start()
    deadline = time.monotonic() + 20
    while agent.heartbeats < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    agent.request_stop("test")
    runner.join(timeout=10)
    assert not runner.is_alive()
    result = results[0]
    assert result.stopped_by == "test" and result.heartbeats >= 2
    assert result.boot.heartbeat_seconds == agent.heartbeat_seconds == HEARTBEAT_SECONDS
    device = fleet.device(result.boot.device_id)
    assert device.last_seen_time.ToMicroseconds() > device.status.report_time.ToMicroseconds()
