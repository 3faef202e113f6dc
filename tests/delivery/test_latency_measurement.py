"""Devices measure their own latency table: delivery says what to measure, the agent
measures it with onnxruntime and sends it to the registry, the profile's table becomes
theirs and the profile is specialized again on it (real registry, search on Ray,
delivery with its reconciler, and an agent)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from pathlib import Path

import grpc
import pytest

from ofa_fleet.agent.backoff import Backoff
from ofa_fleet.agent.boot import BootSettings
from ofa_fleet.agent.connections import Endpoints
from ofa_fleet.agent.latency_measurement import MEASURED_FILE, MeasureSettings
from ofa_fleet.agent.runner import Agent, AgentConfig, AgentResult
from ofa_fleet.agent.smoke import Timing
from ofa_fleet.delivery.serve.latency_measurement import DEVICES_WANTED, measurement_for
from ofa_fleet.delivery.store.specializations import Specializations, SpecializationStatus
from ofa_fleet.hardware.latency_table import LatencyTable
from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.hardware.profile_proto import profile_from_proto, profile_to_proto
from ofa_fleet.v1 import common_pb2, delivery_pb2, delivery_pb2_grpc, registry_pb2, search_pb2
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.delivery.test_reconciler import (  # noqa: F401
    OPERATOR,
    eventually,
    services,
    start_delivery,
)
from tests.predictors.test_latency import TINY, synthetic_table
from tests.registry.server_thread import bearer
from tests.search.conftest import example_profile

TINY_MEASURE = MeasureSettings(rounds=2, runs_per_round=3, whole_models=2)


def supernet_answer(space=TINY) -> search_pb2.GetSupernetResponse:
    return search_pb2.GetSupernetResponse(
        version="v1",
        space_fingerprint=space.fingerprint,
        space_json=space.to_json(),
        in_channels=3,
        num_classes=10,
    )


def profile_with(table: LatencyTable | None, measure: bool = True) -> registry_pb2.Profile:
    spec = dataclasses.replace(example_profile(), measure_on_devices=measure, latency_table=table)
    return registry_pb2.Profile(spec=profile_to_proto(spec))


def reported(stub: RegistryServiceStub) -> registry_pb2.Device:
    answer = stub.ListDevices(
        registry_pb2.ListDevicesRequest(parent="fleets/gw"), metadata=OPERATOR, timeout=10
    )
    return answer.devices[0]


def test_devices_are_asked_until_enough_of_them_measured_this_space():
    threads = example_profile().runtime.threads
    answer = supernet_answer()
    assert measurement_for(profile_with(None, measure=False), answer) is None
    wanted = measurement_for(profile_with(None), answer)
    assert wanted is not None and wanted.space_fingerprint == TINY.fingerprint
    assert (wanted.in_channels, wanted.num_classes, wanted.threads) == (3, 10, threads)
    few = synthetic_table(TINY, threads=threads, devices=DEVICES_WANTED - 1)
    assert measurement_for(profile_with(few), answer) is not None
    enough = dataclasses.replace(few, devices=DEVICES_WANTED)
    assert measurement_for(profile_with(enough), answer) is None
    other_space = dataclasses.replace(enough, space_fingerprint="ab" * 8)
    assert measurement_for(profile_with(other_space), answer) is not None


def test_devices_measure_with_the_graph_optimization_their_profile_runs():
    spec = example_profile()
    basic = dataclasses.replace(
        spec,
        measure_on_devices=True,
        runtime=dataclasses.replace(spec.runtime, graph_optimization="basic"),
    )
    profile = registry_pb2.Profile(spec=profile_to_proto(basic))
    wanted = measurement_for(profile, supernet_answer())
    assert wanted is not None
    assert wanted.graph_optimization == common_pb2.GRAPH_OPTIMIZATION_BASIC
    # Enough devices measured, but at onnxruntime's default: measured again.
    at_default = synthetic_table(TINY, threads=spec.runtime.threads, devices=DEVICES_WANTED)
    profile.spec.latency_table_json = json.dumps(at_default.to_dict())
    assert measurement_for(profile, supernet_answer()) is not None
    at_basic = dataclasses.replace(at_default, graph_optimization="basic")
    profile.spec.latency_table_json = json.dumps(at_basic.to_dict())
    assert measurement_for(profile, supernet_answer()) is None


def profile_and_fleet(
    stub: RegistryServiceStub, profile: HardwareProfile
) -> registry_pb2.CreateFleetResponse:
    """The profile, and fleet `gw` of it."""
    stub.CreateProfile(
        registry_pb2.CreateProfileRequest(profile=profile_to_proto(profile)),
        metadata=OPERATOR,
        timeout=10,
    )
    return stub.CreateFleet(
        registry_pb2.CreateFleetRequest(
            fleet_id="gw", fleet=registry_pb2.Fleet(profile=f"profiles/{profile.name}")
        ),
        metadata=OPERATOR,
        timeout=10,
    )


def with_table(stub: RegistryServiceStub, name: str) -> registry_pb2.Profile | None:
    """The stored profile once it carries a latency table; None before."""
    got = stub.GetProfile(
        registry_pb2.GetProfileRequest(name=f"profiles/{name}"), metadata=OPERATOR, timeout=10
    ).profile
    return got if got.spec.latency_table_json else None


@pytest.mark.slow
def test_a_device_measures_its_table_and_its_profile_is_specialized_on_it(
    services,  # noqa: F811
    tmp_path: Path,
):
    registry, search, folder = services
    profile = dataclasses.replace(example_profile("x86-gateway"), measure_on_devices=True)
    name = profile.name
    with registry.channel() as channel:
        stub = RegistryServiceStub(channel)
        fleet = profile_and_fleet(stub, profile)
        delivery, store = start_delivery(registry, search, folder)
        with delivery:
            first = eventually(lambda: store.current(name))
            assert first.manifest.figures["latency_source"] == "analytic"
            state = tmp_path / "device"
            config = AgentConfig(
                state_dir=state,
                endpoints=Endpoints(registry.address, delivery.address, call_timeout_seconds=5),
                fleet_token=fleet.enrolment_token,
                hardware_id="gw-0",
                boot=BootSettings(
                    threads=profile.runtime.threads,
                    backoff=Backoff(initial_seconds=0.05, cap_seconds=0.4),
                    timing=Timing(warmup=1, runs=5, min_runs=3, max_seconds=0.2),
                ),
                measurement=TINY_MEASURE,
            )
            agent = Agent(config)
            results: list[AgentResult] = []
            running = threading.Thread(target=lambda: results.append(asyncio.run(agent.run())))
            running.start()
            try:
                # The device measured and sent its table; the profile took it as its own.
                stored = eventually(lambda: with_table(stub, name))
                table = profile_from_proto(stored.spec, "profile").latency_table
                assert table is not None and table.devices == 1
                assert table.threads == profile.runtime.threads
                assert stored.revision == 2
                # The new revision was specialized, and search predicts from the table.
                ledger = Specializations(store.database)
                eventually(
                    lambda: (
                        (s := ledger.get(name))
                        and s.state is SpecializationStatus.CURRENT
                        and s.profile_revision == 2
                    ),
                    state=lambda: ledger.get(name),
                )
                # Its model (new bytes, or the same bytes when the table did not change the
                # best subnet) is signed for revision 2, predicted from the table.
                current = store.current(name)
                assert current.manifest.profile_revision == 2
                assert current.manifest.figures["latency_source"] in ("lut", "calibrated")
                eventually(lambda: reported(stub).status.model_sha256 == current.sha256)
                # Asked again (one device is fewer than wanted), it does not measure twice.
                remembered = json.loads((state / MEASURED_FILE).read_text())["measured"]
                assert len(remembered) == 1
                again = stub.GetProfile(
                    registry_pb2.GetProfileRequest(name=f"profiles/{name}"),
                    metadata=OPERATOR,
                    timeout=10,
                ).profile
                assert again.revision == 2
            finally:
                agent.request_stop()
                running.join(timeout=60)
            (result,) = results
            assert result.stopped_by == "request"
            # What measuring drew counts in the device's profiling cost, beside its boots'.
            booted = sum(
                b.profiling_cost.cpu_seconds
                for b in (result.boot, *result.updates)
                if b.profiling_cost is not None
            )
            assert reported(stub).profiling_cost_total.cpu_seconds > booted

            # Another device's token may not ask for this device.
            with grpc.insecure_channel(delivery.address) as channel_to_delivery:
                delivery_stub = delivery_pb2_grpc.DeliveryServiceStub(channel_to_delivery)
                with pytest.raises(grpc.RpcError) as error:
                    delivery_stub.GetLatencyMeasurement(
                        delivery_pb2.GetLatencyMeasurementRequest(
                            device="fleets/gw/devices/d-" + "0" * 20
                        ),
                        metadata=bearer(
                            json.loads((state / "identity.json").read_text())["device_token"]
                        ),
                        timeout=10,
                    )
                assert error.value.code() is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.slow
def test_a_device_whose_profile_no_model_fits_measures_its_table_while_it_waits(
    services,  # noqa: F811
    tmp_path: Path,
):
    """No subnet fits the profile (here its model size limit, which no table can change):
    its devices cannot boot, so they measure while they wait (where the limit is the
    latency budget, what they measure may find a subnet that fits)."""
    registry, search, folder = services
    gateway = example_profile("x86-gateway")
    profile = dataclasses.replace(
        gateway,
        measure_on_devices=True,
        constraints=dataclasses.replace(gateway.constraints, max_model_bytes=1024),
    )
    name = profile.name
    with registry.channel() as channel:
        stub = RegistryServiceStub(channel)
        fleet = profile_and_fleet(stub, profile)
        delivery, store = start_delivery(registry, search, folder)
        with delivery:
            ledger = Specializations(store.database)
            eventually(
                lambda: (s := ledger.get(name)) and s.state is SpecializationStatus.INFEASIBLE,
                state=lambda: ledger.get(name),
            )
            config = AgentConfig(
                state_dir=tmp_path / "device",
                endpoints=Endpoints(registry.address, delivery.address, call_timeout_seconds=5),
                fleet_token=fleet.enrolment_token,
                hardware_id="gw-0",
                boot=BootSettings(
                    threads=profile.runtime.threads,
                    backoff=Backoff(initial_seconds=0.05, cap_seconds=0.4),
                ),
                measurement=TINY_MEASURE,
            )
            agent = Agent(config)
            ended: list[BaseException] = []

            def run() -> None:
                try:
                    asyncio.run(agent.run())
                except BaseException as error:  # the stop before any model, expected
                    ended.append(error)

            running = threading.Thread(target=run)
            running.start()
            try:
                # Its table reached the profile without a model ever running ...
                stored = eventually(lambda: with_table(stub, name))
                table = profile_from_proto(stored.spec, "profile").latency_table
                assert table is not None and table.devices == 1 and stored.revision == 2
                # ... and search tried the profile again with it (still nothing fits 1 KiB).
                eventually(
                    lambda: (
                        (s := ledger.get(name))
                        and s.failed_revision == 2
                        and s.state is SpecializationStatus.INFEASIBLE
                    ),
                    state=lambda: ledger.get(name),
                )
                assert store.current(name) is None
            finally:
                agent.request_stop()
                running.join(timeout=60)
            assert not running.is_alive()
            (error,) = ended
            assert "before the model was running" in str(error)
