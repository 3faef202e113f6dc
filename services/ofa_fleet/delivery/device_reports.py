"""What devices reported, as delivery learns it: from the registry, a listing per fleet.

Devices report to the registry (`ReportStatus`); its change feed says *that* a device
changed (with its fleet), not what it reported. Fetching each device on each change
would cost one call per report, a thousand when a fleet boots; so the fleet monitor only
notes which fleets changed and, at most once per settle period, lists each of those
fleets' devices here, a thousand a page.
"""

from __future__ import annotations

from grpc import aio

from ofa_fleet.carbon.convert import cost_from_proto
from ofa_fleet.delivery.rollout import DeviceReport
from ofa_fleet.serving.client import bearer, upstream_error
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc

REGISTRY_TIMEOUT_SECONDS = 10.0
PAGE_SIZE = 1000


class DeviceReports:
    """Reads fleets, their devices' reports and profiles from the registry (operator)."""

    def __init__(self, registry: registry_pb2_grpc.RegistryServiceStub, token: str) -> None:
        self.registry = registry
        self.token = token

    async def of_fleet(self, fleet: str) -> list[DeviceReport]:
        """Every device of ``fleet`` with its last report; NotFoundError once it is gone."""
        reports: list[DeviceReport] = []
        token = ""
        while True:
            try:
                page = await self.registry.ListDevices(
                    registry_pb2.ListDevicesRequest(
                        fleet=fleet, page_size=PAGE_SIZE, page_token=token
                    ),
                    metadata=bearer(self.token),
                    timeout=REGISTRY_TIMEOUT_SECONDS,
                )
            except aio.AioRpcError as error:
                raise upstream_error(error, f"fleet {fleet!r}", "the registry") from None
            reports += [_report(d) for d in page.devices]
            token = page.next_page_token
            if not token:
                return reports

    async def fleets(self) -> list[registry_pb2.Fleet]:
        fleets: list[registry_pb2.Fleet] = []
        token = ""
        while True:
            try:
                page = await self.registry.ListFleets(
                    registry_pb2.ListFleetsRequest(page_size=PAGE_SIZE, page_token=token),
                    metadata=bearer(self.token),
                    timeout=REGISTRY_TIMEOUT_SECONDS,
                )
            except aio.AioRpcError as error:
                raise upstream_error(error, "the fleets", "the registry") from None
            fleets += page.fleets
            token = page.next_page_token
            if not token:
                return fleets

    async def profile(self, name: str) -> registry_pb2.Profile:
        try:
            answer = await self.registry.GetProfile(
                registry_pb2.GetProfileRequest(name=name),
                metadata=bearer(self.token),
                timeout=REGISTRY_TIMEOUT_SECONDS,
            )
        except aio.AioRpcError as error:
            raise upstream_error(error, f"profile {name!r}", "the registry") from None
        return answer.profile


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
