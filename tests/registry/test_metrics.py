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
    for device, errors in zip(fleet.devices, (["smoke test failed"], []), strict=True):
        stub.ReportStatus(
            pb.ReportStatusRequest(
                device_id=device.device.id,
                status=pb.DeviceStatus(model_sha256=SHA, measured_latency_ms=1.5, errors=errors),
            ),
            metadata=bearer(device.device_token),
            timeout=10,
        )
    assert value("ofa_fleet_device_reports_total", fleet="pis", outcome="ok") == 1
    assert value("ofa_fleet_device_reports_total", fleet="pis", outcome="error") == 1
    stub.DeleteDevice(
        pb.DeleteDeviceRequest(device_id=fleet.devices[0].device.id),
        metadata=bearer(registry.operator_token),
        timeout=10,
    )
    assert value("ofa_fleet_devices_registered", fleet="pis") == 1
