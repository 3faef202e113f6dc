"""A running agent follows delivery's `WatchModel`: new models arrive without a restart."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ofa_fleet.agent.install import POINTER_NAME, ModelDirectory
from ofa_fleet.agent.runner import Agent, AgentResult
from ofa_fleet.agent.state import read_pointer
from ofa_fleet.delivery.signing import ModelSigner
from tests.agent.fleet import CHUNK, Fleet, free_port, sha256
from tests.delivery.server_thread import DeliveryServerThread

WAIT_SECONDS = 30.0  # a bound on waiting for what should happen within a second or two


def installed_sha(state: Path) -> str | None:
    """Read-only, unlike `ModelDirectory`, which tidies the directory a running agent uses."""
    current = read_pointer(state / POINTER_NAME).current
    return current.manifest.sha256 if current else None


def wait_for(condition: Callable[[], bool], what: str, device: RunningAgent) -> None:
    ends = time.monotonic() + WAIT_SECONDS
    while not condition():
        if not device.thread.is_alive():
            raise AssertionError(f"the agent ended before {what}: {device.errors}")
        if time.monotonic() > ends:
            raise AssertionError(f"not within {WAIT_SECONDS:g} s: {what}")
        time.sleep(0.05)


class RunningAgent:
    """An agent (not `--once`) in a thread of its own, as a device runs it."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.results: list[AgentResult] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            self.results.append(asyncio.run(self.agent.run()))
        except BaseException as exc:
            self.errors.append(exc)

    def stop(self) -> AgentResult:
        self.agent.request_stop()
        self.thread.join(timeout=WAIT_SECONDS)
        assert not self.thread.is_alive() and not self.errors, self.errors
        return self.results[0]


@contextmanager
def running(fleet: Fleet, state: Path, **overrides: object) -> Iterator[RunningAgent]:
    agent = RunningAgent(Agent(fleet.config(state, heartbeat_seconds=0.2, **overrides)))
    agent.thread.start()
    try:
        yield agent
    finally:
        if agent.thread.is_alive():
            agent.agent.request_stop()
            agent.thread.join(timeout=WAIT_SECONDS)


def test_a_running_agent_installs_a_new_model_and_keeps_heartbeating(
    fleet: Fleet, model_a: bytes, model_b: bytes, tmp_path: Path
) -> None:
    state = tmp_path / "device"
    old = fleet.publish(model_a)
    with running(fleet, state) as device:
        wait_for(lambda: installed_sha(state) == old, "the first model installed", device)
        wait_for(lambda: device.agent.heartbeats >= 1, "a heartbeat", device)
        new = fleet.publish(model_b, seed=1)
        wait_for(lambda: len(device.agent.updates) == 1, "the new model booted", device)
        assert device.thread.is_alive()  # no restart
        assert installed_sha(state) == new
        beats = device.agent.heartbeats
        wait_for(lambda: device.agent.heartbeats > beats, "heartbeats after the update", device)
        result = device.stop()

    assert result.boot.model_sha256 == old and result.stopped_by == "request"
    (update,) = result.updates
    assert update.model_sha256 == new and not update.enrolled
    assert update.bytes_downloaded == len(model_b) and update.latency_ms > 0
    assert update.problem is None and update.errors == []
    status = fleet.device(result.boot.device_id).status
    assert status.model_sha256 == new and status.measured_latency_ms > 0
    previous = ModelDirectory(state).previous()
    assert previous is not None and previous.manifest.sha256 == old


def test_the_watch_comes_back_after_a_delivery_restart(
    fleet_without_delivery: Fleet, model_a: bytes, model_b: bytes, tmp_path: Path
) -> None:
    fleet = fleet_without_delivery
    port = free_port()
    old = fleet.publish(model_a)
    state = tmp_path / "device"
    serve = lambda: DeliveryServerThread(  # noqa: E731
        fleet.store, fleet.key_path, fleet.registry.address, CHUNK, port=port
    )
    with running(fleet, state, delivery=f"127.0.0.1:{port}") as device:
        with serve():
            wait_for(lambda: installed_sha(state) == old, "the first model installed", device)
        # Delivery is down; its new model is published meanwhile.
        new = fleet.publish(model_b, seed=1)
        time.sleep(0.5)
        assert device.thread.is_alive() and device.agent.updates == []
        with serve():
            wait_for(
                lambda: len(device.agent.updates) == 1, "the new model after the restart", device
            )
        result = device.stop()
    assert [u.model_sha256 for u in result.updates] == [new]
    assert installed_sha(state) == new
    assert fleet.device(result.boot.device_id).status.model_sha256 == new


def test_a_refused_update_leaves_the_model_running_and_is_not_retried(
    fleet_without_delivery: Fleet, model_a: bytes, model_b: bytes, tmp_path: Path
) -> None:
    fleet = fleet_without_delivery
    port = free_port()
    state = tmp_path / "device"
    good = fleet.publish(model_a)
    serve = lambda: DeliveryServerThread(  # noqa: E731
        fleet.store, fleet.key_path, fleet.registry.address, CHUNK, port=port
    )
    with running(fleet, state, delivery=f"127.0.0.1:{port}") as device:
        with serve():
            wait_for(lambda: device.agent.model_updates is not None, "the first boot", device)
            forger = ModelSigner.load_or_create(tmp_path / "forger.key")
            fleet.publish(model_b, signer=forger, seed=1)
            wait_for(lambda: len(device.agent.updates) == 1, "the forged model refused", device)
        watch = device.agent.model_updates
        assert watch is not None
        connected = watch.connected
        with serve():  # the watch reconnects and is told of the forged model again
            wait_for(lambda: watch.connected > connected, "the watch reconnected", device)
            time.sleep(0.5)
            assert device.thread.is_alive()
        result = device.stop()
    (refused,) = result.updates  # announced twice, tried once
    assert refused.model_sha256 == good and refused.problem is not None
    assert "does not verify" in str(refused.problem)
    assert installed_sha(state) == good
    assert fleet.device(result.boot.device_id).status.model_sha256 == good


def test_model_updates_follow_the_watch_only_for_a_running_agent(
    fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    fleet.publish(model_a)
    result = fleet.boot(tmp_path / "device")
    assert result.updates == () and result.stopped_by is None
    assert sha256(model_a) == result.boot.model_sha256
