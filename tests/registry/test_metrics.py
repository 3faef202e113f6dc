"""The registry's own metrics: devices per fleet (read from the database) and reports."""

from __future__ import annotations

from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.registry.test_service import SHA, Fleet


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
                device_id=device.device.id,
                status=pb.DeviceStatus(
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
    stub.DeleteDevice(
        pb.DeleteDeviceRequest(device_id=fleet.devices[0].device.id),
        metadata=bearer(registry.operator_token),
        timeout=10,
    )
    assert value("ofa_fleet_devices_registered", fleet="pis") == 1
