"""Device tokens, checked by the registry: delivery never holds a copy of their digests.

A device calls delivery with the token the registry gave it. Delivery asks the registry
`WhoAmI` with that very token: the registry authenticates it as it does its own calls
and answers with the device, whose name (fleets/{fleet}/devices/{id}) becomes the
principal: which device it is, and which fleet it belongs to. Answers are cached by
token digest under the registry's own cache rules (`serving.token_cache`: dropped when
the device is deleted, at most five minutes), so a device's boot costs one registry
call, not one per chunk or per watch.
"""

from __future__ import annotations

import grpc
from grpc import aio

from ofa_fleet.contract.tokens import DEVICE_PREFIX
from ofa_fleet.errors import UnavailableError
from ofa_fleet.serving.access import Principal, Role
from ofa_fleet.serving.client import bearer
from ofa_fleet.serving.token_cache import TokenCache
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc

WHO_AM_I_TIMEOUT_SECONDS = 5.0
_REFUSED = (
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
)


class RegistryDeviceAuthenticator:
    """Authenticates ``ofa_device_`` tokens through the registry; other tokens: not mine."""

    def __init__(
        self, registry: registry_pb2_grpc.RegistryServiceStub, cache: TokenCache | None = None
    ) -> None:
        self.registry = registry
        self.cache = cache or TokenCache()

    async def authenticate(self, token: str) -> Principal | None:
        if not token.startswith(DEVICE_PREFIX):
            return None
        principal = self.cache.get(token)
        if principal is not None:
            return principal
        try:
            answer = await self.registry.WhoAmI(
                registry_pb2.WhoAmIRequest(),
                metadata=bearer(token),
                timeout=WHO_AM_I_TIMEOUT_SECONDS,
            )
        except aio.AioRpcError as error:
            if error.code() in _REFUSED:
                return None  # unknown tokens are never cached: guessing cannot fill it
            raise UnavailableError(
                f"cannot check the device token with the registry: {error.details()} "
                f"({error.code().name}); retry"
            ) from None
        principal = Principal(Role.DEVICE, answer.device.name)
        self.cache.put(token, principal)
        return principal

    def forget(self, device: str) -> None:
        """The device (by name) was deleted: its tokens are checked with the registry
        again."""
        self.cache.forget(device)

    def forget_all(self) -> None:
        """Deletions may have been missed: every token is checked with the registry again."""
        self.cache.clear()
