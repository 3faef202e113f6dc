"""Delivery's own metrics: models served, coverage per fleet, and the latency-prediction
ratio, from a real delivery server and a fleet monitor reading a real registry."""

from __future__ import annotations

from grpc import aio
from prometheus_client import CollectorRegistry

from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.delivery.reconcile.fleet_monitor import FleetMonitor
from ofa_fleet.delivery.reconcile.metrics import DeliveryMetrics
from ofa_fleet.delivery.store.specializations import BackoffPolicy, Specializations
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc
from tests.delivery.conftest import manifest_for, model_bytes
from tests.delivery.world import PROFILE, World
from tests.loop_thread import LoopThread
from tests.registry.server_thread import bearer
from tests.server_process import OPERATOR_TOKEN


def test_downloads_count_models_bytes_and_up_to_date_answers(world: World):
    def value(name: str, **labels: str) -> float | None:
        return world.metrics.get_sample_value(name, labels)

    data = world.add_model(1, size=50_000)
    world.download(0)
    assert value("ofa_fleet_models_served_total", profile=PROFILE) == 1
    assert value("ofa_fleet_model_bytes_served_total", profile=PROFILE) == len(data)
    sha = world.download(0)[0].sha256
    world.read_model(sha, 1, offset=40_000)  # the rest of an interrupted one
    assert value("ofa_fleet_models_served_total", profile=PROFILE) == 3
    assert value("ofa_fleet_model_bytes_served_total", profile=PROFILE) == 2 * len(data) + 10_000
    world.read_model(sha, 1, limit=1_000)  # a range short of the end serves no model
    assert value("ofa_fleet_models_served_total", profile=PROFILE) == 3
    assert value("ofa_fleet_model_bytes_served_total", profile=PROFILE) == 2 * len(data) + 11_000
    world.get_manifest(0, have_sha256=sha)
    assert value("ofa_fleet_model_manifest_up_to_date_total", profile=PROFILE) == 1
    assert value("ofa_fleet_models_served_total", profile=PROFILE) == 3

    # Specialization states are read from the shared ledger when scraped.
    assert value("ofa_fleet_specializations_failing") == 0
    Specializations(world.store.database).mark_failing(
        "raspberry-pi-3", "no subnet fits", BackoffPolicy()
    )
    assert value("ofa_fleet_specializations_failing") == 1
    assert value("ofa_fleet_specializations_pending") == 0
    Specializations(world.store.database).mark_infeasible(
        "raspberry-pi-3", 1, "v1", "the fastest subnet needs 9 ms"
    )
    assert value("ofa_fleet_specializations_failing") == 0
    assert value("ofa_fleet_specializations_infeasible") == 1


def test_coverage_and_latency_ratio_follow_the_devices_reports(world: World):
    metrics = CollectorRegistry()
    loop = LoopThread()
    try:
        monitor = loop.run(_monitor(world, DeliveryMetrics(metrics)))

        def value(name: str, **labels: str) -> float | None:
            return metrics.get_sample_value(name, labels)

        def evaluate() -> None:
            loop.run(monitor.evaluate_profile(PROFILE))

        first = add_model(world, 1, predicted_ms=2.0)
        evaluate()
        assert value("ofa_fleet_devices_on_current_model", fleet="pis") == 0
        assert value("ofa_fleet_fleet_coverage_ratio", fleet="pis") == 0
        report(world, 0, first, 3.0)
        evaluate()
        assert value("ofa_fleet_fleet_coverage_ratio", fleet="pis") == 0.5
        ratio = "ofa_fleet_latency_prediction_ratio"
        assert value(f"{ratio}_count", profile=PROFILE) == 1
        assert value(f"{ratio}_sum", profile=PROFILE) == 1.5
        evaluate()  # the same report is counted once
        assert value(f"{ratio}_count", profile=PROFILE) == 1
        report(world, 1, first, 1.0)
        report(world, 0, "ab" * 32, 5.0)  # a model delivery never made: no prediction
        evaluate()
        assert value("ofa_fleet_devices_on_current_model", fleet="pis") == 1
        assert value(f"{ratio}_count", profile=PROFILE) == 2
        assert value(f"{ratio}_bucket", profile=PROFILE, le="0.5") == 1

        second = add_model(world, 2, predicted_ms=4.0)  # a new model: nobody runs it yet
        evaluate()
        assert value("ofa_fleet_fleet_coverage_ratio", fleet="pis") == 0
        report(world, 0, second, 4.0)
        report(world, 1, second, 4.0)
        evaluate()
        assert value("ofa_fleet_fleet_coverage_ratio", fleet="pis") == 1
        assert value(f"{ratio}_bucket", profile=PROFILE, le="1.0") == 3

        for enrolled in world.devices:
            world.registry.DeleteDevice(
                registry_pb2.DeleteDeviceRequest(name=enrolled.device.name),
                metadata=bearer(OPERATOR_TOKEN),
                timeout=10,
            )
        world.registry.DeleteFleet(
            registry_pb2.DeleteFleetRequest(name="fleets/pis"),
            metadata=bearer(OPERATOR_TOKEN),
            timeout=10,
        )
        monitor.device_changed("a-fleet-not-seen")  # asks for a sweep
        loop.run(monitor._sweep())
        assert value("ofa_fleet_fleet_coverage_ratio", fleet="pis") is None
    finally:
        loop.close()


def test_a_device_and_its_latency_ratio_get_its_own_profiles_figures_for_shared_bytes(
    world: World,
):
    """Another profile got the same bytes first, predicted for other hardware: this
    profile's devices are still served, and judged by, this profile's own manifest."""
    data = model_bytes(7, 5_000)
    other = manifest_for(data, "x86-gateway", predicted_latency_ms=0.5)
    world.store.add(other, world.signer.sign(other), data)
    own = manifest_for(data, PROFILE, predicted_latency_ms=2.0)
    world.store.add(own, world.signer.sign(own), data)
    world.store.set_current(PROFILE, own.sha256, "missing")
    served = Manifest.from_bytes(world.get_manifest(0).manifest.canonical_manifest)
    assert served == own and served.model_figures().predicted_latency_ms == 2.0
    metrics = CollectorRegistry()
    loop = LoopThread()
    try:
        monitor = loop.run(_monitor(world, DeliveryMetrics(metrics)))
        report(world, 0, own.sha256, 3.0)
        loop.run(monitor.evaluate_profile(PROFILE))
        ratio = "ofa_fleet_latency_prediction_ratio_sum"
        assert metrics.get_sample_value(ratio, {"profile": PROFILE}) == 1.5  # not 3.0 / 0.5
    finally:
        loop.close()


async def _monitor(world: World, metrics: DeliveryMetrics) -> FleetMonitor:
    registry = registry_pb2_grpc.RegistryServiceStub(aio.insecure_channel(world.registry_address))
    ledger = Specializations(world.store.database)
    return FleetMonitor(
        registry, OPERATOR_TOKEN, world.store, ledger, lambda *_: None, metrics=metrics
    )


def add_model(world: World, seed: int, predicted_ms: float) -> str:
    data = model_bytes(seed, 5_000)
    manifest = manifest_for(data, PROFILE, predicted_latency_ms=predicted_ms)
    world.store.add(manifest, world.signer.sign(manifest), data)
    world.store.set_current(PROFILE, manifest.sha256, "missing")
    return manifest.sha256


def report(world: World, device: int, sha256: str, latency_ms: float) -> None:
    enrolled = world.devices[device]
    world.registry.ReportStatus(
        registry_pb2.ReportStatusRequest(
            name=enrolled.device.name,
            report=registry_pb2.StatusReport(model_sha256=sha256, measured_latency_ms=latency_ms),
        ),
        metadata=bearer(enrolled.device_token),
        timeout=10,
    )
