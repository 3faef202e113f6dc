"""A deleted device loses its access to delivery at once, on every replica.

Delivery checks device tokens with the registry (`device_auth`) and caches the answers
for 30 s, so without more a deleted device kept downloading for up to that long, and a
`WatchModel` stream it opened before the deletion stayed open for good. Each replica
therefore follows the registry's change feed for device deletions (`WatchChanges`, kind
DEVICE, operation DELETED, from the newest change on) and, for each, forgets the device's
cached tokens and ends its open streams (UNAUTHENTICATED).

The bound: a deletion reaches every replica within the registry's feed poll (1 s) when
it was made on another registry replica, at once otherwise. While the feed is down the
cache's expiry (30 s) still bounds it; after a reconnect the watch resumes from the last
change it saw, and if the registry no longer holds that far back (CURSOR_EXPIRED), every
cached token is dropped instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

from ofa_fleet.contract.resource_names import device_name
from ofa_fleet.delivery.serve.device_auth import RegistryDeviceAuthenticator
from ofa_fleet.errors import UnauthenticatedError
from ofa_fleet.serving.change_follower import follow_changes
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc

T = TypeVar("T")


class Revocations:
    def __init__(
        self,
        registry: registry_pb2_grpc.RegistryServiceStub,
        token: str,
        devices: RegistryDeviceAuthenticator,
    ) -> None:
        self.registry = registry
        self.token = token
        self.devices = devices
        self._streams: dict[str, set[asyncio.Event]] = {}

    def revoke(self, device: str) -> None:
        """The device was deleted: forget its tokens here and end its open streams."""
        self.devices.forget(device)
        for ended in self._streams.get(device, ()):
            ended.set()

    @contextlib.contextmanager
    def streaming(self, device: str) -> Iterator[asyncio.Event]:
        """An event set when `device` (its name) is revoked, for as long as its stream is open."""
        ended = asyncio.Event()
        self._streams.setdefault(device, set()).add(ended)
        try:
            yield ended
        finally:
            held = self._streams.get(device)
            if held is not None:
                held.discard(ended)
                if not held:
                    del self._streams[device]

    async def until_revoked(self, device: str, source: AsyncIterator[T]) -> AsyncIterator[T]:
        """`source`'s items until the device is revoked, which ends it UNAUTHENTICATED."""
        with self.streaming(device) as ended:
            waiter = asyncio.ensure_future(ended.wait())
            following: asyncio.Future[T] | None = None
            try:
                while True:
                    following = asyncio.ensure_future(anext(source))
                    await asyncio.wait({following, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    if not following.done():
                        following.cancel()
                        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                            await following
                        raise UnauthenticatedError(f"device {device} was deleted; its access ended")
                    try:
                        yield following.result()
                    except StopAsyncIteration:
                        return
            finally:
                waiter.cancel()
                # The client went away while the next item was awaited: stop awaiting it,
                # so its end (StopAsyncIteration) is never an unretrieved task's error.
                if following is not None and not following.done():
                    following.cancel()

    async def follow(self) -> None:
        """Revoke each device the registry deletes, until cancelled (the server stops)."""
        await follow_changes(
            self.registry,
            self.token,
            [registry_pb2.CHANGE_KIND_DEVICE],
            [registry_pb2.CHANGE_OPERATION_DELETED],
            lambda change: self.revoke(device_name(change.parent, change.id)),
            self.devices.forget_all,  # some deletions were missed: ask the registry again
            "device revocations",
        )
