"""What devices reported, as delivery learns it: from the registry, a listing per fleet.

Devices report to the registry (`ReportStatus`); its change feed says *that* a device
changed (with its fleet), not what it reported. Fetching each device on each change
would cost one call per report, a thousand when a fleet boots; so the fleet monitor only
notes which fleets changed and, at most once per settle period, lists each of those
fleets' devices here, a thousand a page.
"""

from __future__ import annotations

from ofa_fleet.carbon.convert import cost_from_proto
from ofa_fleet.delivery.rollout import DeviceReport
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.v1 import registry_pb2


class DeviceReports:
    """Reads a fleet's devices and their last reports from the registry (operator)."""

    def __init__(self, registry: RegistryClient) -> None:
        self.registry = registry

    async def of_fleet(self, fleet: str) -> list[DeviceReport]:
        """Every device of ``fleet`` with its last report; NotFoundError once it is gone."""
        return [_report(device) for device in await self.registry.list_devices(fleet)]


def _report(device: registry_pb2.Device) -> DeviceReport:
    profiling = cost_from_proto(device.profiling_cost_total)
    if not device.HasField("status"):
        return DeviceReport(device.id, device.revision, profiling=profiling)
    status = device.status
    return DeviceReport(
        device_id=device.id,
        revision=device.revision,
        reported=True,
        sha256=status.model_sha256,
        latency_ms=status.measured_latency_ms,
        errors=len(status.errors),
        profiling=profiling,
    )
