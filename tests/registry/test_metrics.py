"""The registry's own metrics: devices per fleet (read from the database), reports, and
what devices' profiling drew."""

from __future__ import annotations

import math

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ofa_fleet.v1 import common_pb2
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.metrics.scrape import scrape
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.registry.test_service import SHA, Fleet

PROFILING = {"activity": "device_profiling"}


def test_devices_per_fleet_and_reports_by_outcome(registry: RegistryServerThread, channel):
    stub = RegistryServiceStub(channel)
    assert registry.server is not None
    metrics = registry.server.metrics.registry

    def value(name: str, **labels: str) -> float | None:
        return metrics.get_sample_value(name, labels)

    assert value("ofa_fleet_devices_registered", fleet="pis") is None
    fleet = Fleet(stub)
    assert value("ofa_fleet_devices_registered", fleet="pis") == 2
    for device, errors, boot in zip(
        fleet.devices, (["smoke test failed"], []), (0.0, 3.0), strict=True
    ):
        stub.ReportStatus(
            pb.ReportStatusRequest(
                name=device.device.name,
                report=pb.StatusReport(
                    model_sha256=SHA,
                    measured_latency_ms=1.5,
                    errors=errors,
                    boot_to_model_seconds=boot,
                ),
            ),
            metadata=bearer(device.device_token),
            timeout=10,
        )
    assert value("ofa_fleet_device_reports_total", fleet="pis", outcome="ok") == 1
    assert value("ofa_fleet_device_reports_total", fleet="pis", outcome="error") == 1
    # Boot-to-model as the devices measured it; 0 (not measured) is not an observation.
    assert value("ofa_fleet_boot_to_model_seconds_count") == 1
    assert value("ofa_fleet_boot_to_model_seconds_sum") == 3.0
    assert value("ofa_fleet_boot_to_model_seconds_bucket", le="2.5") == 0
    assert value("ofa_fleet_boot_to_model_seconds_bucket", le="5.0") == 1
    # A figure that would poison the histogram is refused, and nothing is written.
    for bad in (math.inf, math.nan, -1.0, 1e12):
        request = pb.ReportStatusRequest(
            name=fleet.devices[1].device.name,
            report=pb.StatusReport(model_sha256=SHA, boot_to_model_seconds=bad),
        )
        with pytest.raises(grpc.RpcError) as error:
            stub.ReportStatus(request, metadata=bearer(fleet.devices[1].device_token), timeout=10)
        assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "boot_to_model_seconds must be 0 to" in error.value.details()
    assert value("ofa_fleet_boot_to_model_seconds_sum") == 3.0
    assert value("ofa_fleet_device_reports_total", fleet="pis", outcome="ok") == 1
    stub.DeleteDevice(
        pb.DeleteDeviceRequest(name=fleet.devices[0].device.name),
        metadata=bearer(registry.operator_token),
        timeout=10,
    )
    assert value("ofa_fleet_devices_registered", fleet="pis") == 1


def test_device_profiling_costs_are_counted_by_activity(registry: RegistryServerThread, channel):
    stub = RegistryServiceStub(channel)
    assert registry.server is not None
    fleet = Fleet(stub)
    for device, cpu in zip(fleet.devices, (1.5, 0.5), strict=True):
        stub.ReportStatus(
            pb.ReportStatusRequest(
                name=device.device.name,
                report=pb.StatusReport(
                    model_sha256=SHA,
                    profiling_cost=common_pb2.EnergyCost(
                        cpu_seconds=cpu, energy_joules=cpu * 10, co2e_grams=cpu / 10
                    ),
                ),
            ),
            metadata=bearer(device.device_token),
            timeout=10,
        )
    exposition = scrape(registry.server.metrics.start("127.0.0.1", 0))
    samples = {
        family.name: {s.name: s.value for s in family.samples if s.labels == PROFILING}
        for family in text_string_to_metric_families(exposition)
    }
    assert samples["ofa_fleet_cpu_seconds"]["ofa_fleet_cpu_seconds_total"] == 2.0
    assert samples["ofa_fleet_energy_joules"]["ofa_fleet_energy_joules_total"] == 20.0
    assert samples["ofa_fleet_co2e_grams"]["ofa_fleet_co2e_grams_total"] == pytest.approx(0.2)
