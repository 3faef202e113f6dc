"""Staged rollouts end to end: a real registry, a real delivery server, devices reporting
over gRPC, and the fleet monitor judging their reports; the state survives a restart."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc import aio

from ofa_fleet.delivery.reconcile.fleet_monitor import FleetMonitor, MonitorSettings
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.specializations import Specializations
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.v1 import (
    delivery_pb2,
    delivery_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
)
from tests.delivery.conftest import blob_store, manifest_for, model_bytes, open_database
from tests.delivery.server_thread import DeliveryServerThread
from tests.delivery.world import CHUNK, OPERATOR, PROFILE, enrol
from tests.loop_thread import LoopThread
from tests.registry.conftest import example_profile
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.server_process import OPERATOR_TOKEN

DEVICES = 10
STAGED = registry_pb2.RolloutPolicy(
    staged=registry_pb2.StagedRollout(
        canary_percent=20, failure_threshold_percent=40, min_success_reports=2
    ),
)


@dataclass
class Rollouts:
    """A staged fleet of ten devices, delivery, and a fleet monitor driven by the test."""

    folder: Path
    registry: registry_pb2_grpc.RegistryServiceStub
    registry_address: str
    devices: list[registry_pb2.RegisterDeviceResponse]
    loop: LoopThread
    store: ModelStore | None = None
    monitor: FleetMonitor | None = None
    delivery: DeliveryServerThread | None = None
    stub: delivery_pb2_grpc.DeliveryServiceStub | None = None
    channel: grpc.Channel | None = None
    woken: list[tuple[str, str]] = field(default_factory=list)

    def start_delivery(self) -> None:
        database = open_database(f"sqlite:///{self.folder / 'delivery.db'}")
        self.store = ModelStore(database, blob_store("files", database, self.folder / "blobs"))
        self.delivery = DeliveryServerThread(
            self.store, self.folder / "signing.key", self.registry_address, CHUNK
        )
        self.delivery.__enter__()
        self.channel = grpc.insecure_channel(self.delivery.address)
        self.stub = delivery_pb2_grpc.DeliveryServiceStub(self.channel)
        self.monitor = self.loop.run(self._monitor())

    async def _monitor(self) -> FleetMonitor:
        assert self.store is not None
        stub = registry_pb2_grpc.RegistryServiceStub(aio.insecure_channel(self.registry_address))
        wake = lambda profile, reason: self.woken.append((profile, reason))  # noqa: E731
        return FleetMonitor(
            stub, OPERATOR_TOKEN, self.store, Specializations(self.store.database), wake
        )

    def stop_delivery(self) -> None:
        assert self.delivery is not None and self.channel is not None and self.store
        self.channel.close()
        self.delivery.__exit__(None, None, None)
        self.store.database.close()

    def evaluate(self) -> None:
        assert self.monitor is not None
        self.loop.run(self.monitor.evaluate_profile(PROFILE))

    def new_model(self, seed: int) -> str:
        assert self.store is not None and self.delivery is not None
        data = model_bytes(seed, 20_000)
        manifest = manifest_for(data, PROFILE)
        self.store.add(manifest, self.delivery.signer.sign(manifest), data)
        self.store.set_current(PROFILE, manifest.sha256, "missing")
        return manifest.sha256

    def target(self, device: int) -> str:
        """The sha256 GetModelManifest gives this device."""
        assert self.stub is not None
        enrolled = self.devices[device]
        answer = self.stub.GetModelManifest(
            delivery_pb2.GetModelManifestRequest(device=enrolled.device.name),
            metadata=bearer(enrolled.device_token),
            timeout=10,
        )
        return answer.manifest.sha256

    def report(self, device: int, sha256: str, latency_ms: float, errors: tuple = ()) -> None:
        enrolled = self.devices[device]
        self.registry.ReportStatus(
            registry_pb2.ReportStatusRequest(
                name=enrolled.device.name,
                report=registry_pb2.StatusReport(
                    model_sha256=sha256, measured_latency_ms=latency_ms, errors=errors
                ),
            ),
            metadata=bearer(enrolled.device_token),
            timeout=10,
        )

    def shown(self) -> delivery_pb2.GetProfileModelsResponse:
        assert self.stub is not None
        return self.stub.GetProfileModels(
            delivery_pb2.GetProfileModelsRequest(name=f"profiles/{PROFILE}"), metadata=OPERATOR
        )


@pytest.fixture
def rollouts(tmp_path: Path) -> Iterator[Rollouts]:
    loop = LoopThread()
    with (
        RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry,
        registry.channel() as channel,
    ):
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        stub.CreateProfile(
            registry_pb2.CreateProfileRequest(profile=profile_to_proto(example_profile())),
            metadata=OPERATOR,
            timeout=10,
        )
        devices = enrol(
            stub,
            registry_pb2.CreateFleetRequest(
                fleet_id="pis",
                fleet=registry_pb2.Fleet(profile=f"profiles/{PROFILE}", rollout=STAGED),
            ),
            DEVICES,
        )
        world = Rollouts(tmp_path, stub, registry.address, devices, loop)
        world.start_delivery()
        try:
            yield world
        finally:
            world.stop_delivery()
            loop.close()


def test_a_staged_rollout_reaches_canaries_first_then_everyone(rollouts: Rollouts):
    first = rollouts.new_model(1)
    rollouts.evaluate()  # the fleet's first model: everyone at once
    assert {rollouts.target(d) for d in range(DEVICES)} == {first}
    second = rollouts.new_model(2)
    assert {rollouts.target(d) for d in range(DEVICES)} == {first}  # not judged yet
    rollouts.evaluate()
    targets = [rollouts.target(d) for d in range(DEVICES)]
    canaries = [d for d, sha in enumerate(targets) if sha == second]
    assert len(canaries) == 2 and targets.count(first) == DEVICES - 2
    expected = sorted(
        range(DEVICES),
        key=lambda d: hashlib.sha256(f"pis/{rollouts.devices[d].device.id}".encode()).hexdigest(),
    )[:2]
    assert canaries == sorted(expected)
    # A canary watching hears of the new model; one of the rest keeps the first.
    rest = next(d for d in range(DEVICES) if d not in canaries)
    watches = {d: watch(rollouts, d) for d in (canaries[0], rest)}
    assert next(watches[canaries[0]]).manifest.sha256 == second
    assert next(watches[rest]).manifest.sha256 == first

    rollouts.report(rest, first, 9.0)  # not a canary: its report does not count
    rollouts.report(canaries[0], second, 1.5)
    rollouts.evaluate()
    (shown,) = rollouts.shown().rollouts
    assert (shown.state, shown.successful_canaries, shown.needed_successes) == (
        delivery_pb2.ROLLOUT_STATE_CANARY,
        1,
        2,
    )
    assert (shown.from_sha256, shown.to_sha256, shown.canary_devices) == (first, second, 2)
    rollouts.report(canaries[1], second, 2.0)
    rollouts.evaluate()
    assert rollouts.shown().rollouts[0].state == delivery_pb2.ROLLOUT_STATE_PROMOTED
    assert {rollouts.target(d) for d in range(DEVICES)} == {second}
    assert next(watches[rest]).manifest.sha256 == second  # promotion reaches the watchers
    for stream in watches.values():
        stream.cancel()


def test_failing_canaries_roll_back_and_the_state_survives_a_restart(rollouts: Rollouts):
    first = rollouts.new_model(3)
    rollouts.evaluate()
    second = rollouts.new_model(4)
    rollouts.evaluate()
    canaries = [d for d in range(DEVICES) if rollouts.target(d) == second]
    watching = watch(rollouts, canaries[0])
    assert next(watching).manifest.sha256 == second
    rollouts.report(canaries[0], second, 50.0)  # over the 4 ms budget: a failure
    rollouts.evaluate()  # 1 of 2 canaries failed: 50 % is past 40 %
    (shown,) = rollouts.shown().rollouts
    assert (shown.state, shown.failed_canaries) == (delivery_pb2.ROLLOUT_STATE_ROLLED_BACK, 1)
    assert {rollouts.target(d) for d in range(DEVICES)} == {first}
    assert next(watching).manifest.sha256 == first  # the canary is told to go back
    watching.cancel()

    rollouts.stop_delivery()
    rollouts.start_delivery()  # a new process: its database, a new monitor
    rollouts.report(canaries[1], second, 1.0)  # too late: the rollout was decided
    rollouts.evaluate()
    assert rollouts.shown().rollouts[0] == shown
    assert {rollouts.target(d) for d in range(DEVICES)} == {first}
    # The next model starts a new rollout from the model the fleet runs.
    third = rollouts.new_model(5)
    rollouts.evaluate()
    again = rollouts.shown().rollouts[0]
    assert (again.state, again.from_sha256, again.to_sha256) == (
        delivery_pb2.ROLLOUT_STATE_CANARY,
        first,
        third,
    )


def test_a_canary_state_survives_a_restart_and_finishes_after_it(rollouts: Rollouts):
    rollouts.new_model(6)
    rollouts.evaluate()
    second = rollouts.new_model(7)
    rollouts.evaluate()
    canaries = [d for d in range(DEVICES) if rollouts.target(d) == second]
    rollouts.report(canaries[0], second, 1.0)
    rollouts.evaluate()
    rollouts.stop_delivery()
    rollouts.start_delivery()
    assert [d for d in range(DEVICES) if rollouts.target(d) == second] == canaries
    assert rollouts.shown().rollouts[0].successful_canaries == 1
    rollouts.report(canaries[1], second, 1.0)
    rollouts.evaluate()
    assert {rollouts.target(d) for d in range(DEVICES)} == {second}


def test_one_device_of_three_over_budget_is_too_many(rollouts: Rollouts):
    """A budget holds for every device: a model most devices run within it is still
    over when more than 5% of them measure it over (the median would not say so)."""
    current = rollouts.new_model(8)
    rollouts.evaluate()
    for device, ms in enumerate((1.0, 2.0, 3.9)):
        rollouts.report(device, current, ms)
    rollouts.evaluate()
    assert rollouts.woken == []  # all three within the 4 ms budget
    rollouts.report(2, current, 5.0)
    rollouts.evaluate()
    assert rollouts.woken == [(PROFILE, "over-budget")]
    shown = rollouts.shown()
    assert (shown.over_budget_latency_ms, shown.over_budget_reports) == (5.0, 3)


def watch(rollouts: Rollouts, device: int) -> grpc.Future:
    assert rollouts.stub is not None
    enrolled = rollouts.devices[device]
    return rollouts.stub.WatchModel(
        delivery_pb2.WatchModelRequest(device=enrolled.device.name),
        metadata=bearer(enrolled.device_token),
        timeout=30,
    )


def test_devices_measuring_the_model_over_budget_ask_for_one_new_model(rollouts: Rollouts):
    current = rollouts.new_model(8)
    rollouts.evaluate()
    rollouts.report(0, current, 9.0)
    rollouts.report(1, current, 11.0)
    rollouts.report(2, "ab" * 32, 50.0)  # another model: not this one's measurement
    rollouts.evaluate()
    assert rollouts.woken == []  # two reports are too few to judge
    rollouts.report(3, current, 10.0)
    rollouts.report(4, current, 1.0)
    rollouts.evaluate()  # 3 of 9, 11, 10, 1 over a 4 ms budget; 95% within 11 ms
    assert rollouts.woken == [(PROFILE, "over-budget")]
    shown = rollouts.shown()
    assert (shown.over_budget_sha256, shown.over_budget_latency_ms) == (current, 11.0)
    assert shown.over_budget_reports == 4
    state = Specializations(rollouts.store.database).get(PROFILE)  # type: ignore[union-attr]
    assert state is not None and state.latency_reports == (("ks=3,3|e=3,4|d=2,2|r=32", 11.0),)
    rollouts.report(4, current, 12.0)
    rollouts.evaluate()
    assert rollouts.woken == [(PROFILE, "over-budget")]  # never twice for one model
    fine = rollouts.new_model(9)
    for device in range(3):
        rollouts.report(device, fine, 3.0)
    rollouts.evaluate()
    assert rollouts.woken == [(PROFILE, "over-budget")]  # within budget


def test_the_running_monitor_finds_new_reports_by_itself(rollouts: Rollouts):
    first = rollouts.new_model(10)
    assert rollouts.monitor is not None
    rollouts.monitor.settings = MonitorSettings(settle_seconds=0.05, sweep_seconds=0.2)
    running = asyncio.run_coroutine_threadsafe(rollouts.monitor.run(), rollouts.loop.loop)
    try:
        eventually(lambda: rollouts.shown().rollouts)
        second = rollouts.new_model(11)
        rollouts.monitor.profile_changed(PROFILE)  # as the reconciler does when it stores one
        eventually(lambda: rollouts.shown().rollouts[0].to_sha256 == second)
        canaries = [d for d in range(DEVICES) if rollouts.target(d) == second]
        for device in canaries:
            rollouts.report(device, second, 1.0)  # found by the periodic sweep
        eventually(
            lambda: rollouts.shown().rollouts[0].state == delivery_pb2.ROLLOUT_STATE_PROMOTED
        )
        assert {rollouts.target(d) for d in range(DEVICES)} == {second} != {first}
    finally:
        running.cancel()


def eventually(check: Callable[[], object], timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "the monitor did not get there in time"
        time.sleep(0.05)
    return value
