"""The typed Python client: the registry, delivery and search in one object.

    import asyncio
    from ofa_fleet.client import AsyncFleetClient

    async def main() -> None:
        async with AsyncFleetClient() as fleet:  # addresses, TLS and token as the CLI finds them
            async for profile in fleet.registry.iter_profiles():
                models = await fleet.delivery.profile_models(profile.spec.name)
                print(profile.spec.name, models.current.sha256 or "no model yet")

    asyncio.run(main())

`FleetClient` is the same for code without an event loop (`with FleetClient() as fleet:
fleet.registry.list_fleets()`). The clients are the CLI's own (`RegistryClient`,
`DeliveryClient`, `SearchClient`): every call has the settings' deadline, a failure is a
`RemoteCallError` that carries the server's status, reason and facts, listings come
whole (``list_*``) or page by page (``iter_*``), and only UNAVAILABLE is retried (by
gRPC, with backoff, before any answer arrives): anything else will not get better by
asking again.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from grpc import aio

from ofa_fleet.client.search_client import SearchClient
from ofa_fleet.client.settings import ClientSettings
from ofa_fleet.serving.client import open_aio_channel, remote_errors
from ofa_fleet.serving.delivery_client import DeliveryClient
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.v1 import registry_pb2_grpc, search_pb2_grpc

T = TypeVar("T")
# gRPC's own retries: UNAVAILABLE only (the service was not reached or is restarting).
RETRY_POLICY = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)
RETRY_OPTIONS = (("grpc.enable_retries", 1), ("grpc.service_config", RETRY_POLICY))


class AsyncFleetClient:
    """Registry, delivery and search clients on channels opened in the running loop."""

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self.settings = settings
        self._channels: list[aio.Channel] = []

    async def __aenter__(self) -> AsyncFleetClient:
        s = self.settings = self.settings or ClientSettings.resolve()
        registry, delivery, search = (
            self._channel(address) for address in (s.registry, s.delivery, s.search)
        )
        self.registry = RegistryClient(
            registry_pb2_grpc.RegistryServiceStub(registry),
            s.token,
            deadline_seconds=s.deadline_seconds,
            errors=remote_errors("registry", s.registry),
        )
        self.delivery = DeliveryClient(
            delivery,
            s.token,
            deadline_seconds=s.deadline_seconds,
            errors=remote_errors("delivery", s.delivery),
        )
        self.search = SearchClient(
            search_pb2_grpc.SearchServiceStub(search), s.token, s.search, s.deadline_seconds
        )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        channels, self._channels = self._channels, []
        for channel in channels:
            await channel.close(None)

    def _channel(self, address: str) -> aio.Channel:
        assert self.settings is not None
        channel = open_aio_channel(address, self.settings.tls, RETRY_OPTIONS)
        self._channels.append(channel)
        return channel


class FleetClient:
    """`AsyncFleetClient` for code without an event loop: each call runs on a loop the
    client keeps in a thread of its own, and returns (or raises) as the async call does.
    ``registry``, ``delivery`` and ``search`` offer the async clients' methods, plain;
    an ``iter_*`` method gives a plain iterator."""

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._client: AsyncFleetClient | None = None

    def __enter__(self) -> FleetClient:
        self._thread.start()
        client = self._run(AsyncFleetClient(self._settings).__aenter__())
        self._client = client
        self.registry: Any = _Blocking(client.registry, self._run)
        self.delivery: Any = _Blocking(client.delivery, self._run)
        self.search: Any = _Blocking(client.search, self._run)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._client is not None:
                self._run(self._client.__aexit__(None, None, None))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def _run(self, coroutine: Awaitable[T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(_awaited(coroutine), self._loop)
        return future.result()


class _Blocking:
    """An async client's methods as plain calls (see `FleetClient`)."""

    def __init__(self, target: object, run: Callable[[Awaitable[Any]], Any]) -> None:
        self._target = target
        self._run = run

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)
        if name.startswith("_") or not callable(method):
            raise AttributeError(name)
        if name.startswith("iter_"):
            return lambda *args, **kwargs: self._iterate(method(*args, **kwargs))
        return lambda *args, **kwargs: self._run(method(*args, **kwargs))

    def _iterate(self, source: AsyncIterator[Any]) -> Any:
        while True:
            try:
                yield self._run(anext(source))
            except StopAsyncIteration:
                return


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
