"""The reconciler keeps its place in the registry's change feed past the feed's retention,
and an operator's Respecialize names a profile that exists."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from ofa_fleet.delivery.reconcile.reconciler import FEED, ReconcilerSettings
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.specializations import Specializations
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.v1 import delivery_pb2, delivery_pb2_grpc, registry_pb2, registry_pb2_grpc
from tests.delivery.conftest import blob_store, open_database
from tests.delivery.server_thread import DeliveryServerThread
from tests.delivery.world import CHUNK, OPERATOR
from tests.registry.conftest import example_profile
from tests.registry.server_thread import RegistryServerThread


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.1)


def test_an_expired_cursor_moves_to_the_head_and_the_feed_is_followed_on(tmp_path: Path):
    with (
        RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry,
        registry.channel() as channel,
        socket.socket() as closed,  # search is down: the feed is followed all the same
    ):
        closed.bind(("127.0.0.1", 0))
        stub = registry_pb2_grpc.RegistryServiceStub(channel)

        def create(name: str) -> None:
            spec = profile_to_proto(example_profile())
            spec.name = name
            request = registry_pb2.CreateProfileRequest(profile=spec)
            stub.CreateProfile(request, metadata=OPERATOR, timeout=10)

        for name in ("cams", "gates", "pis"):
            create(name)  # changes 1 to 3
        assert registry.store is not None
        registry.store.prune_changes(time.time_ns() // 1000 + 1)  # none held any more
        database = open_database(f"sqlite:///{tmp_path / 'delivery.db'}")
        store = ModelStore(database, blob_store("files", database, tmp_path / "blobs"))
        ledger = Specializations(database)
        ledger.save_cursor(FEED, 1)  # it read change 1, then stopped for longer than retention
        delivery = DeliveryServerThread(
            store,
            tmp_path / "signing.key",
            registry.address,
            CHUNK,
            f"127.0.0.1:{closed.getsockname()[1]}",
            ReconcilerSettings(retry_poll_seconds=0.2),
        )
        with delivery:
            eventually(lambda: ledger.cursor(FEED) == 3)
            create("sensors")  # change 4, followed from the head
            eventually(lambda: ledger.cursor(FEED) == 4)
            # Every profile was looked at (and, with search down, failed to specialize).
            eventually(lambda: all(ledger.get(p) for p in ("cams", "gates", "pis", "sensors")))
            # An operator asks again for a profile there is, and for one there is not.
            with grpc.insecure_channel(delivery.address) as delivery_channel:
                deliveries = delivery_pb2_grpc.DeliveryServiceStub(delivery_channel)

                def respecialize(name: str) -> None:
                    request = delivery_pb2.RespecializeRequest(name=f"profiles/{name}")
                    deliveries.Respecialize(request, metadata=OPERATOR, timeout=10)

                respecialize("cams")
                with pytest.raises(grpc.RpcError) as error:
                    respecialize("nothing-here")
                assert error.value.code() is grpc.StatusCode.NOT_FOUND
