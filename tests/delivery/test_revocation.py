"""A deleted device loses delivery at once: on every replica, its cached token and its open
WatchModel stream included (the registry's change feed tells each replica)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc

from ofa_fleet.v1 import delivery_pb2, delivery_pb2_grpc, registry_pb2
from tests.delivery.server_thread import DeliveryServerThread
from tests.delivery.world import CHUNK, OPERATOR, World
from tests.registry.server_thread import bearer

# The stated bound is the feed's poll (1 s); this allows a slow machine, and is still well
# under the 30 s a cached token would otherwise live.
BOUND_SECONDS = 10.0


def refusal(replica, request, metadata) -> grpc.StatusCode | None:  # type: ignore[no-untyped-def]
    """The code `replica` refuses the request with; None while it still answers."""
    try:
        replica.GetModelManifest(request, metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        return error.code()
    return None


def test_a_deleted_device_is_refused_by_every_replica_and_its_streams_end(
    world: World, tmp_path: Path
):
    world.add_model(1)
    device = world.devices[0]
    own = bearer(device.device_token)
    request = delivery_pb2.GetModelManifestRequest(device=device.device.name)
    with (
        DeliveryServerThread(
            world.store, tmp_path / "signing.key", world.registry_address, CHUNK
        ) as second,
        grpc.insecure_channel(second.address) as channel,
    ):
        replicas = [world.delivery, delivery_pb2_grpc.DeliveryServiceStub(channel)]
        for replica in replicas:  # each replica now holds the device's token in its cache
            assert replica.GetModelManifest(request, metadata=own, timeout=10).manifest.sha256
        watch = replicas[1].WatchModel(
            delivery_pb2.WatchModelRequest(device=device.device.name), metadata=own, timeout=60
        )
        assert next(watch).manifest.sha256
        ended: list[grpc.RpcError] = []

        def wait_for_the_end() -> None:
            try:
                next(watch)
            except grpc.RpcError as error:
                ended.append(error)

        waiter = threading.Thread(target=wait_for_the_end)
        waiter.start()
        world.registry.DeleteDevice(
            registry_pb2.DeleteDeviceRequest(name=device.device.name), metadata=OPERATOR
        )
        deadline = time.monotonic() + BOUND_SECONDS
        for replica in replicas:
            while (code := refusal(replica, request, own)) is None:
                assert time.monotonic() < deadline, "still served after the deletion"
                time.sleep(0.05)
            assert code is grpc.StatusCode.UNAUTHENTICATED
        waiter.join(timeout=BOUND_SECONDS)
        assert ended and ended[0].code() is grpc.StatusCode.UNAUTHENTICATED
        assert "was deleted" in ended[0].details()
        other = world.devices[1]  # the fleet's other device is untouched
        still = delivery_pb2.GetModelManifestRequest(device=other.device.name)
        assert (
            replicas[1]
            .GetModelManifest(still, metadata=bearer(other.device_token), timeout=10)
            .manifest.sha256
        )
