"""The registry as the other services call it: typed, with one deadline and whole listings.

Delivery and search read profiles, fleets and devices with the operator token. Every call
here has the same deadline, every listing follows its pages to the end, and every failure
becomes this service's own error (`upstream_error`: NOT_FOUND stays NOT_FOUND, anything
else is UNAVAILABLE, so the caller's client knows to retry), written once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from grpc import aio

from ofa_fleet.serving.client import bearer, upstream_error
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc

# A registry answers in milliseconds; this bounds a stuck one, not a slow one.
REGISTRY_DEADLINE_SECONDS = 10.0
PAGE_SIZE = 1000
WHERE = "the registry"

Item = TypeVar("Item")


class RegistryClient:
    """Async calls to the registry with the operator token."""

    def __init__(
        self,
        stub: registry_pb2_grpc.RegistryServiceStub,
        token: str,
        *,
        deadline_seconds: float = REGISTRY_DEADLINE_SECONDS,
        where: str = WHERE,
    ) -> None:
        self.stub = stub
        self.token = token
        self.deadline_seconds = deadline_seconds
        self.where = where

    async def get_profile(self, name: str) -> registry_pb2.Profile:
        request = registry_pb2.GetProfileRequest(name=name)
        answer = await self._call(self.stub.GetProfile, request, f"profile {name!r}")
        return answer.profile

    async def get_fleet(self, name: str) -> registry_pb2.Fleet:
        request = registry_pb2.GetFleetRequest(name=name)
        answer = await self._call(self.stub.GetFleet, request, f"fleet {name!r}")
        return answer.fleet

    async def update_fleet(self, request: registry_pb2.UpdateFleetRequest) -> registry_pb2.Fleet:
        answer = await self._call(self.stub.UpdateFleet, request, f"fleet {request.name!r}")
        return answer.fleet

    async def list_profiles(self) -> list[registry_pb2.Profile]:
        return await self._every_page(
            lambda token: self.stub.ListProfiles(
                registry_pb2.ListProfilesRequest(page_size=PAGE_SIZE, page_token=token),
                **self._options(),
            ),
            "profiles",
            "the profiles",
        )

    async def list_fleets(self) -> list[registry_pb2.Fleet]:
        return await self._every_page(
            lambda token: self.stub.ListFleets(
                registry_pb2.ListFleetsRequest(page_size=PAGE_SIZE, page_token=token),
                **self._options(),
            ),
            "fleets",
            "the fleets",
        )

    async def list_devices(self, fleet: str) -> list[registry_pb2.Device]:
        """Every device of ``fleet``; NotFoundError once the fleet is gone."""
        return await self._every_page(
            lambda token: self.stub.ListDevices(
                registry_pb2.ListDevicesRequest(fleet=fleet, page_size=PAGE_SIZE, page_token=token),
                **self._options(),
            ),
            "devices",
            f"fleet {fleet!r}",
        )

    def _options(self) -> dict[str, Any]:
        return {"metadata": bearer(self.token), "timeout": self.deadline_seconds}

    async def _call(self, method: Callable[..., Awaitable[Any]], request: object, what: str) -> Any:
        try:
            return await method(request, **self._options())
        except aio.AioRpcError as error:
            raise upstream_error(error, what, self.where) from None

    async def _every_page(
        self, fetch: Callable[[str], Awaitable[Any]], field: str, what: str
    ) -> list[Any]:
        items: list[Any] = []
        token = ""
        while True:
            try:
                page = await fetch(token)
            except aio.AioRpcError as error:
                raise upstream_error(error, what, self.where) from None
            items += getattr(page, field)
            token = page.next_page_token
            if not token:
                return items
