"""A device deleted on one registry replica is refused by another at once, not when the
other's token cache expires (five minutes): each replica follows the change feed for deletions."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.registry.server_thread import OPERATOR_TOKEN, RegistryServerThread, bearer
from tests.registry.test_service import Fleet

BOUND_SECONDS = 10.0  # the feed polls every 0.2 s here; well under the cache's 30 s


def test_a_deletion_on_one_replica_reaches_the_others_cache(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with (
        RegistryServerThread(url) as first,
        RegistryServerThread(url) as second,
        first.channel() as one,
        second.channel() as two,
    ):
        a, b = RegistryServiceStub(one), RegistryServiceStub(two)
        device = Fleet(a).devices[0]
        beat = pb.HeartbeatRequest(name=device.device.name)
        b.Heartbeat(beat, metadata=bearer(device.device_token), timeout=10)  # b caches it
        a.DeleteDevice(
            pb.DeleteDeviceRequest(name=device.device.name), metadata=bearer(OPERATOR_TOKEN)
        )
        deadline = time.monotonic() + BOUND_SECONDS
        # While b still trusts the cached token, the call reaches the store: NOT_FOUND.
        while refusal(b, device.device_token) is not grpc.StatusCode.UNAUTHENTICATED:
            assert time.monotonic() < deadline, "the other replica still trusts the token"
            time.sleep(0.05)


def refusal(stub: RegistryServiceStub, token: str) -> grpc.StatusCode | None:
    try:
        stub.WhoAmI(pb.WhoAmIRequest(), metadata=bearer(token), timeout=10)
    except grpc.RpcError as error:
        return error.code()
    return None
