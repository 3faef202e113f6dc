"""`RegistryServicer`: protobuf in, `RegistryStore` call, protobuf out.

Database work runs in worker threads so one slow query never stalls the event loop that
serves every other call. The interceptor has already authenticated the caller and checked
that a device names only itself; errors raised here are mapped to status codes there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import ParamSpec, TypeVar

from grpc import aio

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.contract import tokens
from ofa_fleet.contract.fields import check_name, check_within
from ofa_fleet.contract.heartbeat import (
    DEFAULT_HEARTBEAT_SECONDS,
    check_heartbeat_seconds,
    interval_to_proto,
)
from ofa_fleet.contract.resource_names import (
    parse_device_name,
    parse_fleet_name,
    parse_fleet_parent,
    parse_profile_name,
)
from ofa_fleet.contract.rollout import rollout_from_proto
from ofa_fleet.errors import ConflictError, InvalidArgumentError, NotFoundError
from ofa_fleet.hardware.profile_proto import (
    latency_table_from_json,
    profile_from_proto,
    profile_to_proto,
)
from ofa_fleet.registry import convert
from ofa_fleet.registry.change_feed import ChangeFeed
from ofa_fleet.registry.fleet_update import requested_change
from ofa_fleet.registry.profile_update import apply_update
from ofa_fleet.registry.records import DeviceRecord, Enrolment
from ofa_fleet.registry.store import RegistryStore
from ofa_fleet.registry.write_batcher import WriteBatcher
from ofa_fleet.serving.access import current_principal
from ofa_fleet.serving.timestamps import timestamp
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1 import registry_pb2_grpc

P = ParamSpec("P")
R = TypeVar("R")


MAX_BOOT_SECONDS = 30 * 24 * 3600.0  # a device may wait long for its services, not forever
UPDATE_ATTEMPTS = 3  # merges of one UpdateProfile when other updates land in between


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(
        self,
        store: RegistryStore,
        feed: ChangeFeed,
        revoked: Callable[[str], None] = lambda subject: None,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        reported: Callable[[str, int, float, EnergyCost | None], None] = (
            lambda fleet, errors, seconds, profiling: None
        ),
    ) -> None:
        # (fleet, errors, boot-to-model seconds, profiling cost) of each status report,
        # for the metrics
        self.reported = reported
        self.store = store
        self.feed = feed
        self.batcher = WriteBatcher(store.database)
        self.revoked = revoked  # a deleted device's or fleet's cached tokens must go
        # Told to every device in every answer it gets (see contract.heartbeat).
        self.heartbeat_interval = interval_to_proto(check_heartbeat_seconds(heartbeat_seconds))

    async def _run(self, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(call, *args, **kwargs)

    async def _write(self, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        result = await asyncio.to_thread(call, *args, **kwargs)
        self.feed.notify()
        return result

    # -- profiles -------------------------------------------------------------------------

    async def CreateProfile(  # noqa: N802 - names come from the proto
        self, request: pb.CreateProfileRequest, context: aio.ServicerContext
    ) -> pb.CreateProfileResponse:
        spec = profile_from_proto(request.profile, "profile")
        record = await self._write(self.store.create_profile, spec)
        return pb.CreateProfileResponse(profile=convert.profile_record_to_proto(record))

    async def GetProfile(  # noqa: N802
        self, request: pb.GetProfileRequest, context: aio.ServicerContext
    ) -> pb.GetProfileResponse:
        record = await self._run(self.store.get_profile, parse_profile_name(request.name))
        profile = convert.profile_record_to_proto(record)
        convert.apply_view(profile, request.view, pb.PROFILE_VIEW_FULL)
        return pb.GetProfileResponse(profile=profile)

    async def ListProfiles(  # noqa: N802
        self, request: pb.ListProfilesRequest, context: aio.ServicerContext
    ) -> pb.ListProfilesResponse:
        page = await self._run(self.store.list_profiles, request.page_size, request.page_token)
        profiles = [convert.profile_record_to_proto(r) for r in page.items]
        for profile in profiles:
            convert.apply_view(profile, request.view, pb.PROFILE_VIEW_BASIC)
        return pb.ListProfilesResponse(profiles=profiles, next_page_token=page.next_token)

    async def UpdateProfile(  # noqa: N802
        self, request: pb.UpdateProfileRequest, context: aio.ServicerContext
    ) -> pb.UpdateProfileResponse:
        name = check_name(request.profile.name, "profile.name")
        mask = request.update_mask if request.HasField("update_mask") else None
        asked = request.expected_revision if request.HasField("expected_revision") else None
        attempts = 0
        while True:
            stored = await self._run(self.store.get_profile, name)
            merged = apply_update(profile_to_proto(stored.spec), request.profile, mask)
            spec = profile_from_proto(merged, "profile")
            # Merged from what was read, so it applies only to that revision; another
            # update in between is merged again, unless the client named its revision.
            expected = stored.revision if asked is None else asked
            try:
                record = await self._write(self.store.update_profile, spec, expected)
            except ConflictError:
                attempts += 1
                if asked is not None or attempts == UPDATE_ATTEMPTS:
                    raise
                continue
            return pb.UpdateProfileResponse(profile=convert.profile_record_to_proto(record))

    async def DeleteProfile(  # noqa: N802
        self, request: pb.DeleteProfileRequest, context: aio.ServicerContext
    ) -> pb.DeleteProfileResponse:
        expected = request.expected_revision if request.HasField("expected_revision") else None
        await self._write(self.store.delete_profile, parse_profile_name(request.name), expected)
        return pb.DeleteProfileResponse()

    # -- fleets ---------------------------------------------------------------------------

    async def CreateFleet(  # noqa: N802
        self, request: pb.CreateFleetRequest, context: aio.ServicerContext
    ) -> pb.CreateFleetResponse:
        fleet = request.fleet
        name = check_name(request.fleet_id, "fleet_id")
        profile = parse_profile_name(fleet.profile, "fleet.profile")
        rollout = rollout_from_proto(fleet.rollout)
        record, token = await self._write(self.store.create_fleet, name, profile, rollout)
        return pb.CreateFleetResponse(fleet=convert.fleet_to_proto(record), enrolment_token=token)

    async def GetFleet(  # noqa: N802
        self, request: pb.GetFleetRequest, context: aio.ServicerContext
    ) -> pb.GetFleetResponse:
        record = await self._run(self.store.get_fleet, parse_fleet_name(request.name))
        return pb.GetFleetResponse(fleet=convert.fleet_to_proto(record))

    async def ListFleets(  # noqa: N802
        self, request: pb.ListFleetsRequest, context: aio.ServicerContext
    ) -> pb.ListFleetsResponse:
        page = await self._run(self.store.list_fleets, request.page_size, request.page_token)
        return pb.ListFleetsResponse(
            fleets=[convert.fleet_to_proto(r) for r in page.items],
            next_page_token=page.next_token,
        )

    async def UpdateFleet(  # noqa: N802
        self, request: pb.UpdateFleetRequest, context: aio.ServicerContext
    ) -> pb.UpdateFleetResponse:
        name = parse_fleet_name(request.fleet.name, "fleet.name")
        mask = request.update_mask if request.HasField("update_mask") else None
        change = requested_change(request.fleet, mask)
        expected = request.expected_revision if request.HasField("expected_revision") else None
        record = await self._write(
            self.store.update_fleet, name, change.profile, change.rollout, expected
        )
        return pb.UpdateFleetResponse(fleet=convert.fleet_to_proto(record))

    async def DeleteFleet(  # noqa: N802
        self, request: pb.DeleteFleetRequest, context: aio.ServicerContext
    ) -> pb.DeleteFleetResponse:
        expected = request.expected_revision if request.HasField("expected_revision") else None
        name = parse_fleet_name(request.name)
        await self._write(self.store.delete_fleet, name, expected)
        self.revoked(name)  # its enrolment tokens' principal is the fleet's id
        return pb.DeleteFleetResponse()

    # -- devices --------------------------------------------------------------------------

    async def RegisterDevice(  # noqa: N802
        self, request: pb.RegisterDeviceRequest, context: aio.ServicerContext
    ) -> pb.RegisterDeviceResponse:
        token, token_hash = tokens.issue(tokens.DEVICE_PREFIX)
        enrolment = Enrolment(
            current_principal().subject, request.hardware_id, request.request_id, token, token_hash
        )
        record: DeviceRecord
        record, token = await self.batcher.submit_shared(
            RegistryStore.register_devices_in, enrolment
        )
        self.feed.notify()
        return pb.RegisterDeviceResponse(
            device=convert.device_to_proto(record),
            device_token=token,
            heartbeat_interval=self.heartbeat_interval,
        )

    async def Heartbeat(  # noqa: N802
        self, request: pb.HeartbeatRequest, context: aio.ServicerContext
    ) -> pb.HeartbeatResponse:
        device_id = parse_device_name(request.name).device
        now: int = await self.batcher.submit_shared(RegistryStore.heartbeats_in, device_id)
        return pb.HeartbeatResponse(
            server_time=timestamp(now), heartbeat_interval=self.heartbeat_interval
        )

    async def ReportStatus(  # noqa: N802
        self, request: pb.ReportStatusRequest, context: aio.ServicerContext
    ) -> pb.ReportStatusResponse:
        if not request.HasField("report"):
            raise InvalidArgumentError("report is required")
        boot_seconds = check_boot_seconds(request.report.boot_to_model_seconds)
        status = convert.status_from_proto(request.report)
        device_id = parse_device_name(request.name).device
        record = await self._write(self.store.report_status, device_id, status, request.request_id)
        self.reported(
            record.fleet,
            len(status.errors),
            boot_seconds,
            status.profiling_cost,
        )
        return pb.ReportStatusResponse(
            device=convert.device_to_proto(record), heartbeat_interval=self.heartbeat_interval
        )

    async def SubmitLatencyTable(  # noqa: N802
        self, request: pb.SubmitLatencyTableRequest, context: aio.ServicerContext
    ) -> pb.SubmitLatencyTableResponse:
        table = latency_table_from_json(request.latency_table_json, "latency_table_json")
        device_id = parse_device_name(request.name).device
        merged = await self._write(self.store.submit_latency_table, device_id, table)
        return pb.SubmitLatencyTableResponse(
            profile_name=merged.profile_name,
            profile_revision=merged.profile_revision,
            devices_merged=merged.devices_merged,
            devices_dropped=merged.devices_dropped,
        )

    async def GetDevice(  # noqa: N802
        self, request: pb.GetDeviceRequest, context: aio.ServicerContext
    ) -> pb.GetDeviceResponse:
        record = await self._device(request.name)
        return pb.GetDeviceResponse(device=convert.device_to_proto(record))

    async def WhoAmI(  # noqa: N802
        self, request: pb.WhoAmIRequest, context: aio.ServicerContext
    ) -> pb.WhoAmIResponse:
        record = await self._device(current_principal().subject)
        return pb.WhoAmIResponse(device=convert.device_to_proto(record))

    async def ListDevices(  # noqa: N802
        self, request: pb.ListDevicesRequest, context: aio.ServicerContext
    ) -> pb.ListDevicesResponse:
        page = await self._run(
            self.store.list_devices,
            request.page_size,
            request.page_token,
            parse_fleet_parent(request.parent) or "",
            request.filter,
        )
        return pb.ListDevicesResponse(
            devices=[convert.device_to_proto(r) for r in page.items],
            next_page_token=page.next_token,
        )

    async def DeleteDevice(  # noqa: N802
        self, request: pb.DeleteDeviceRequest, context: aio.ServicerContext
    ) -> pb.DeleteDeviceResponse:
        expected = request.expected_revision if request.HasField("expected_revision") else None
        record = await self._device(request.name)  # NOT_FOUND in another fleet's name
        await self._write(self.store.delete_device, record.id, expected)
        self.revoked(request.name)
        return pb.DeleteDeviceResponse()

    async def _device(self, name: str) -> DeviceRecord:
        """The device a name names: NOT_FOUND for an id in another fleet's name too."""
        named = parse_device_name(name)
        record = await self._run(self.store.get_device, named.device)
        if record.fleet != named.fleet:
            raise NotFoundError(f"device {name!r} does not exist")
        return record

    # -- change feed ----------------------------------------------------------------------

    async def WatchChanges(  # noqa: N802
        self, request: pb.WatchChangesRequest, context: aio.ServicerContext
    ) -> AsyncIterator[pb.WatchChangesResponse]:
        kinds = convert.kinds_from_proto(request.kinds)
        operations = convert.operations_from_proto(request.operations)
        watch = self.feed.watch(request.after_cursor, kinds, operations, request.from_head)
        async for change in watch:
            yield convert.change_to_proto(change)


def check_boot_seconds(seconds: float) -> float:
    """A report's boot-to-model time: one bad figure would poison the fleet's histogram
    (an infinite sum stays infinite until the registry restarts)."""
    return check_within(
        seconds,
        0.0,
        MAX_BOOT_SECONDS,
        f"report.boot_to_model_seconds must be 0 to {MAX_BOOT_SECONDS:g} (0 when not measured)",
    )
