"""The registry as every other program calls it: typed, one deadline, whole listings.

Delivery and search read profiles, fleets and devices with the operator token; the CLI and
the demo also write them. Every call here has the same deadline, every listing follows
its pages to the end, and every failure goes through one `ErrorTranslation`: a service
turns it into its own status (`upstream_errors`: NOT_FOUND stays NOT_FOUND, anything else
is UNAVAILABLE, so its client retries), an operator's program into a readable
`RemoteCallError` with the registry's own status (`remote_errors`).

Methods take a profile's or a fleet's id (what an operator types) and send its resource
name; the records they return carry resource names (profiles/{profile}, fleets/{fleet}),
which `contract.resource_names` parses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from grpc import aio

from ofa_fleet.contract.resource_names import ANY_FLEET, fleet_name, profile_name
from ofa_fleet.serving.client import ErrorTranslation, bearer, upstream_errors
from ofa_fleet.v1 import common_pb2, registry_pb2, registry_pb2_grpc

# A registry answers in milliseconds; this bounds a stuck one, not a slow one.
REGISTRY_DEADLINE_SECONDS = 10.0
PAGE_SIZE = 1000  # the registry's largest page
WHERE = "the registry"


class RegistryClient:
    """Async calls to the registry with the operator token."""

    def __init__(
        self,
        stub: registry_pb2_grpc.RegistryServiceStub,
        token: str,
        *,
        deadline_seconds: float = REGISTRY_DEADLINE_SECONDS,
        errors: ErrorTranslation | None = None,
    ) -> None:
        self.stub = stub
        self.token = token
        self.deadline_seconds = deadline_seconds
        self.errors = errors or upstream_errors(WHERE)

    async def create_profile(self, spec: common_pb2.HardwareProfile) -> registry_pb2.Profile:
        request = registry_pb2.CreateProfileRequest(profile=spec)
        answer = await self._call(self.stub.CreateProfile, request, f"profile {spec.name!r}")
        return answer.profile

    async def update_profile(
        self, spec: common_pb2.HardwareProfile, expected_revision: int | None = None
    ) -> registry_pb2.Profile:
        """Replace the profile with ``spec`` whole (update mask "*"): what a file says."""
        request = registry_pb2.UpdateProfileRequest(
            profile=spec, update_mask=FieldMask(paths=["*"])
        )
        if expected_revision is not None:
            request.expected_revision = expected_revision
        answer = await self._call(self.stub.UpdateProfile, request, f"profile {spec.name!r}")
        return answer.profile

    async def get_profile(self, name: str) -> registry_pb2.Profile:
        """The profile whose id is ``name``."""
        request = registry_pb2.GetProfileRequest(name=profile_name(name))
        answer = await self._call(self.stub.GetProfile, request, f"profile {name!r}")
        return answer.profile

    async def delete_profile(self, name: str) -> None:
        request = registry_pb2.DeleteProfileRequest(name=profile_name(name))
        await self._call(self.stub.DeleteProfile, request, f"profile {name!r}")

    async def create_fleet(
        self, name: str, profile: str, rollout: registry_pb2.RolloutPolicy | None = None
    ) -> registry_pb2.CreateFleetResponse:
        """The new fleet (id ``name``, on profile id ``profile``) and its enrolment token
        (shown only here, stored only as a hash)."""
        fleet = registry_pb2.Fleet(profile=profile_name(profile), rollout=rollout)
        request = registry_pb2.CreateFleetRequest(fleet=fleet, fleet_id=name)
        answer: registry_pb2.CreateFleetResponse = await self._call(
            self.stub.CreateFleet, request, f"fleet {name!r}"
        )
        return answer

    async def get_fleet(self, name: str) -> registry_pb2.Fleet:
        """The fleet whose id is ``name``."""
        request = registry_pb2.GetFleetRequest(name=fleet_name(name))
        answer = await self._call(self.stub.GetFleet, request, f"fleet {name!r}")
        return answer.fleet

    async def update_fleet(self, request: registry_pb2.UpdateFleetRequest) -> registry_pb2.Fleet:
        answer = await self._call(self.stub.UpdateFleet, request, f"fleet {request.fleet.name!r}")
        return answer.fleet

    async def delete_fleet(self, name: str) -> None:
        request = registry_pb2.DeleteFleetRequest(name=fleet_name(name))
        await self._call(self.stub.DeleteFleet, request, f"fleet {name!r}")

    async def get_device(self, name: str) -> registry_pb2.Device:
        """The device of this name (fleets/{fleet}/devices/{device})."""
        request = registry_pb2.GetDeviceRequest(name=name)
        answer = await self._call(self.stub.GetDevice, request, f"device {name!r}")
        return answer.device

    async def delete_device(self, name: str, expected_revision: int | None = None) -> None:
        request = registry_pb2.DeleteDeviceRequest(name=name, expected_revision=expected_revision)
        await self._call(self.stub.DeleteDevice, request, f"device {name!r}")

    async def list_profiles(
        self, view: registry_pb2.ProfileView = registry_pb2.PROFILE_VIEW_BASIC
    ) -> list[registry_pb2.Profile]:
        """Every profile; without their latency data unless `view` is FULL."""
        return [profile async for profile in self.iter_profiles(view)]

    async def list_fleets(self) -> list[registry_pb2.Fleet]:
        return [fleet async for fleet in self.iter_fleets()]

    async def list_devices(self, fleet: str = "", filter: str = "") -> list[registry_pb2.Device]:
        """Every device of ``fleet`` (of every fleet when empty) that matches ``filter``
        (ListDevicesRequest.filter; every device when empty); NOT_FOUND once it is gone."""
        return [device async for device in self.iter_devices(fleet, filter)]

    def iter_profiles(
        self, view: registry_pb2.ProfileView = registry_pb2.PROFILE_VIEW_BASIC
    ) -> AsyncIterator[registry_pb2.Profile]:
        """Every profile, one page fetched at a time (a listing too large to hold)."""
        return self._each(
            lambda token: self.stub.ListProfiles(
                registry_pb2.ListProfilesRequest(page_size=PAGE_SIZE, page_token=token, view=view),
                **self._options(),
            ),
            "profiles",
            "the profiles",
        )

    def iter_fleets(self) -> AsyncIterator[registry_pb2.Fleet]:
        return self._each(
            lambda token: self.stub.ListFleets(
                registry_pb2.ListFleetsRequest(page_size=PAGE_SIZE, page_token=token),
                **self._options(),
            ),
            "fleets",
            "the fleets",
        )

    def iter_devices(self, fleet: str = "", filter: str = "") -> AsyncIterator[registry_pb2.Device]:
        return self._each(
            lambda token: self.stub.ListDevices(
                registry_pb2.ListDevicesRequest(
                    parent=fleet_name(fleet or ANY_FLEET),
                    page_size=PAGE_SIZE,
                    page_token=token,
                    filter=filter,
                ),
                **self._options(),
            ),
            "devices",
            f"fleet {fleet!r}" if fleet else "the devices",
        )

    async def _each(
        self, fetch: Callable[[str], Awaitable[Any]], field: str, what: str
    ) -> AsyncIterator[Any]:
        token = ""
        while True:
            try:
                page = await fetch(token)
            except aio.AioRpcError as error:
                raise self.errors(error, what) from None
            for item in getattr(page, field):
                yield item
            token = page.next_page_token
            if not token:
                return

    def _options(self) -> dict[str, Any]:
        return {"metadata": bearer(self.token), "timeout": self.deadline_seconds}

    async def _call(self, method: Callable[..., Awaitable[Any]], request: object, what: str) -> Any:
        try:
            return await method(request, **self._options())
        except aio.AioRpcError as error:
            raise self.errors(error, what) from None
