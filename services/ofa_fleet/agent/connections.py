"""The agent's two services, registry and delivery: channels, deadlines, readable errors.

Every call has a deadline. A failure that waiting may cure (UNAVAILABLE,
DEADLINE_EXCEEDED) is raised as the raw `AioRpcError` for `backoff.retry` to wait out;
any other becomes one readable `RemoteCallError` naming the service and its address.

The channels reconnect on their own with gRPC's backoff, which by default grows to two
minutes: a device whose delivery was down for a while would then keep failing fast long
after it came back. The agent's channels cap that at a few seconds, below the agent's
own retry cap, so that a service that is back is found by the next retry.

gRPC shares one TCP connection among all channels of a process that have the same target
and options (its global subchannel pool). That suits one device per process; a process
that plays many devices (the fleet simulator) sets `own_connection` to give each of its
channels a connection of its own, as separate devices would have.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from grpc import aio

from ofa_fleet.agent.backoff import TRANSIENT_CODES
from ofa_fleet.serving.channel_options import CLIENT_OPTIONS
from ofa_fleet.serving.client import bearer, remote_error
from ofa_fleet.serving.tls import TlsFiles, channel_credentials
from ofa_fleet.v1 import delivery_pb2_grpc, registry_pb2_grpc

Response = TypeVar("Response")
DEFAULT_CALL_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Endpoints:
    """Where the agent's services are and how to reach them."""

    registry: str
    delivery: str
    tls: TlsFiles | None = None
    call_timeout_seconds: float = DEFAULT_CALL_TIMEOUT_SECONDS
    own_connection: bool = False  # see the module docstring


class Connections:
    """Open channels to registry and delivery; open inside the event loop that uses them."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self._registry_channel = _open(endpoints.registry, endpoints)
        self._delivery_channel = _open(endpoints.delivery, endpoints)
        self.registry = registry_pb2_grpc.RegistryServiceStub(self._registry_channel)
        self.delivery = delivery_pb2_grpc.DeliveryServiceStub(self._delivery_channel)

    async def call_registry(
        self, method: Callable[..., Awaitable[Response]], request: object, token: str
    ) -> Response:
        return await self._unary("registry", self.endpoints.registry, method, request, token)

    async def call_delivery(
        self, method: Callable[..., Awaitable[Response]], request: object, token: str
    ) -> Response:
        return await self._unary("delivery", self.endpoints.delivery, method, request, token)

    async def _unary(
        self,
        service: str,
        address: str,
        method: Callable[..., Awaitable[Response]],
        request: object,
        token: str,
    ) -> Response:
        try:
            return await method(
                request, metadata=bearer(token), timeout=self.endpoints.call_timeout_seconds
            )
        except aio.AioRpcError as error:
            if error.code() in TRANSIENT_CODES:
                raise  # for backoff.retry
            raise remote_error(service, address, error) from None

    def delivery_error(self, error: aio.AioRpcError) -> Exception:
        """A delivery stream's failure: raw when transient (to retry), else readable."""
        if error.code() in TRANSIENT_CODES:
            return error
        return remote_error("delivery", self.endpoints.delivery, error)

    async def close(self) -> None:
        await self._registry_channel.close(None)
        await self._delivery_channel.close(None)


def _open(address: str, endpoints: Endpoints) -> aio.Channel:
    options = list(CLIENT_OPTIONS)  # reconnect backoff capped (channel_options)
    if endpoints.own_connection:
        options.append(("grpc.use_local_subchannel_pool", 1))
    tls = endpoints.tls
    if tls is not None and tls.enabled:
        return aio.secure_channel(address, channel_credentials(tls), options=options)
    return aio.insecure_channel(address, options=options)
