"""Every server's /metrics, scraped over HTTP after real traffic, passes `promtool check
metrics` and carries the names deploy/METRICS.md promises for it."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc import aio

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.delivery.reconcile.fleet_monitor import FleetMonitor
from ofa_fleet.delivery.reconcile.metrics import DeliveryMetrics
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.specializations import Specializations
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.v1 import (
    delivery_pb2,
    delivery_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)
from tests.delivery.conftest import blob_store, manifest_for, model_bytes, open_database
from tests.delivery.server_thread import DeliveryServerThread
from tests.delivery.world import CHUNK, OPERATOR, PROFILE, enrol
from tests.loop_thread import LoopThread
from tests.metrics.scrape import families, promtool_problems, scrape
from tests.registry.conftest import example_profile
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.search.server_thread import SearchServerThread
from tests.server_process import OPERATOR_TOKEN

GRPC = {"grpc_server_started_total", "grpc_server_handled_total", "grpc_server_handling_seconds"}
REGISTRY = {
    "ofa_fleet_devices_registered",
    "ofa_fleet_device_reports_total",
    "ofa_fleet_boot_to_model_seconds",
}
DELIVERY = {
    "ofa_fleet_models_served_total",
    "ofa_fleet_model_bytes_served_total",
    "ofa_fleet_model_manifest_up_to_date_total",
    "ofa_fleet_specialization_seconds",
    "ofa_fleet_specializations_total",
    "ofa_fleet_specializations_failing",
    "ofa_fleet_specializations_infeasible",
    "ofa_fleet_specializations_pending",
    "ofa_fleet_reconciler_queue_depth",
    "ofa_fleet_devices_on_current_model",
    "ofa_fleet_fleet_coverage_ratio",
    "ofa_fleet_latency_prediction_ratio",
    "ofa_fleet_energy_joules_total",
    "ofa_fleet_co2e_grams_total",
    "ofa_fleet_cpu_seconds_total",
}


def test_registry_and_delivery_expositions_pass_promtool(tmp_path: Path):
    database = open_database(f"sqlite:///{tmp_path / 'delivery.db'}")
    store = ModelStore(database, blob_store("files", database, tmp_path / "blobs"))
    loop = LoopThread()
    with (
        RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry,
        registry.channel() as channel,
        DeliveryServerThread(store, tmp_path / "signing.key", registry.address, CHUNK) as delivery,
        grpc.insecure_channel(delivery.address) as delivery_channel,
    ):
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        stub.CreateProfile(
            registry_pb2.CreateProfileRequest(profile=profile_to_proto(example_profile())),
            metadata=OPERATOR,
            timeout=10,
        )
        (device,) = enrol(
            stub,
            registry_pb2.CreateFleetRequest(
                fleet_id="pis", fleet=registry_pb2.Fleet(profile=f"profiles/{PROFILE}")
            ),
            1,
        )
        data = model_bytes(1, 20_000)
        manifest = manifest_for(data, PROFILE, predicted_latency_ms=2.0)
        store.add(manifest, delivery.signer.sign(manifest), data, EnergyCost(4.0, 40.0, 0.5))
        store.set_current(PROFILE, manifest.sha256, "missing")
        # A device boots: it downloads its model and reports it running.
        deliveries = delivery_pb2_grpc.DeliveryServiceStub(delivery_channel)
        deliveries.GetModelManifest(
            delivery_pb2.GetModelManifestRequest(device=device.device.name),
            metadata=bearer(device.device_token),
            timeout=10,
        )
        list(
            deliveries.ReadModel(
                delivery_pb2.ReadModelRequest(sha256=manifest.sha256),
                metadata=bearer(device.device_token),
                timeout=10,
            )
        )
        stub.ReportStatus(
            registry_pb2.ReportStatusRequest(
                name=device.device.name,
                report=registry_pb2.StatusReport(
                    model_sha256=manifest.sha256,
                    measured_latency_ms=2.5,
                    boot_to_model_seconds=1.5,
                ),
            ),
            metadata=bearer(device.device_token),
            timeout=10,
        )
        # The reconciler's fleet monitor, reporting into this delivery's metrics.
        assert delivery.delivery is not None
        monitor = loop.run(_monitor(registry.address, store, delivery.delivery.metrics))
        loop.run(monitor.evaluate_profile(PROFILE))
        delivery.delivery.metrics.specialized("missing", True, 12.0)
        delivery.delivery.metrics.specialized("over-budget", False, 3.0)

        assert registry.server is not None
        scraped = {
            "registry": scrape(registry.server.metrics.start("127.0.0.1", 0)),
            "delivery": scrape(delivery.metrics.start("127.0.0.1", 0)),
        }
    loop.close()
    database.close()
    assert families(scraped["registry"]) >= GRPC | REGISTRY
    assert families(scraped["delivery"]) >= GRPC | DELIVERY
    assert 'ofa_fleet_fleet_coverage_ratio{fleet="pis"} 1.0' in scraped["delivery"]
    # The stored model's specialization cost, read back from delivery's database.
    assert 'ofa_fleet_energy_joules_total{activity="specialization"} 40.0' in scraped["delivery"]
    for server, exposition in scraped.items():
        assert promtool_problems(exposition) == "", server


async def _monitor(
    registry_address: str, store: ModelStore, metrics: DeliveryMetrics
) -> FleetMonitor:
    registry = registry_pb2_grpc.RegistryServiceStub(aio.insecure_channel(registry_address))
    ledger = Specializations(store.database)
    return FleetMonitor(registry, OPERATOR_TOKEN, store, ledger, lambda *_: None, metrics=metrics)


@pytest.mark.slow
def test_search_exposition_passes_promtool(specializer):
    with SearchServerThread(specializer) as search, grpc.insecure_channel(search.address) as c:
        search_pb2_grpc.SearchServiceStub(c).GetSupernet(
            search_pb2.GetSupernetRequest(), metadata=OPERATOR, timeout=10
        )
        exposition = scrape(search.metrics.start("127.0.0.1", 0))
    names = families(exposition)
    assert names >= GRPC
    assert {"ofa_fleet_search_candidates_evaluated_total", "ofa_fleet_search_seconds"} <= names
    assert promtool_problems(exposition) == ""
