"""Respecialize's long-running operations over gRPC, with search down: followed by name,
listed, waited for, cancelled and deleted; and taken up by the next leader when the one
that took the call stops."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

from ofa_fleet.contract.error_details import from_status
from ofa_fleet.delivery.reconcile.reconciler import ReconcilerSettings
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.specializations import BackoffPolicy
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.v1 import delivery_pb2, delivery_pb2_grpc, registry_pb2, registry_pb2_grpc
from tests.cli_runner import ofa_fleet
from tests.delivery.conftest import blob_store, open_database
from tests.delivery.server_thread import DeliveryServerThread
from tests.delivery.world import CHUNK, OPERATOR
from tests.registry.conftest import example_profile
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.server_process import OPERATOR_TOKEN

SETTINGS = ReconcilerSettings(
    retry_poll_seconds=0.1, backoff=BackoffPolicy(base_seconds=60.0, cap_seconds=60.0)
)


@dataclass
class Setup:
    registry: registry_pb2_grpc.RegistryServiceStub
    registry_address: str
    search_address: str  # nothing listens there: every attempt fails
    folder: Path

    def delivery(self) -> DeliveryServerThread:
        database = open_database(f"sqlite:///{self.folder / 'delivery.db'}")
        store = ModelStore(database, blob_store("files", database, self.folder / "blobs"))
        return DeliveryServerThread(
            store,
            self.folder / "signing.key",
            self.registry_address,
            CHUNK,
            self.search_address,
            SETTINGS,
        )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    with (
        RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry,
        registry.channel() as channel,
        socket.socket() as closed,
    ):
        closed.bind(("127.0.0.1", 0))
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        for name in ("cams", "gates"):
            spec = profile_to_proto(example_profile())
            spec.name = name
            stub.CreateProfile(
                registry_pb2.CreateProfileRequest(profile=spec), metadata=OPERATOR, timeout=10
            )
        yield Setup(stub, registry.address, f"127.0.0.1:{closed.getsockname()[1]}", tmp_path)


def eventually(check: Callable[[], object], timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.1)
    return value


def metadata_of(operation: operations_pb2.Operation) -> delivery_pb2.RespecializeMetadata:
    metadata = delivery_pb2.RespecializeMetadata()
    assert operation.metadata.Unpack(metadata)
    return metadata


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code()  # type: ignore[no-any-return]


def test_an_operation_is_followed_listed_waited_for_cancelled_and_deleted(setup: Setup):
    with setup.delivery() as delivery, grpc.insecure_channel(delivery.address) as channel:
        deliveries = delivery_pb2_grpc.DeliveryServiceStub(channel)
        operations = operations_pb2_grpc.OperationsStub(channel)

        def respecialize(profile: str) -> operations_pb2.Operation:
            request = delivery_pb2.RespecializeRequest(name=f"profiles/{profile}")
            return deliveries.Respecialize(request, metadata=OPERATOR, timeout=10)

        def get(name: str) -> operations_pb2.Operation:
            request = operations_pb2.GetOperationRequest(name=name)
            return operations.GetOperation(request, metadata=OPERATOR, timeout=10)

        started = respecialize("cams")
        assert started.name.startswith("operations/") and not started.done
        assert metadata_of(started).profile_name == "cams"
        # Search is down: the attempt fails, and the operation stays open for the retry,
        # saying why and when.
        failing = eventually(lambda: metadata_of(get(started.name)).attempts >= 1 or None)
        assert failing
        now = get(started.name)
        stands = metadata_of(now)
        assert not now.done and not now.HasField("error") and not now.HasField("response")
        assert stands.state == delivery_pb2.SPECIALIZATION_STATE_FAILING
        assert "UNAVAILABLE" in stands.last_error and stands.HasField("next_attempt_time")

        waited = time.monotonic()
        timeout = duration_pb2.Duration(seconds=1)
        still = operations.WaitOperation(
            operations_pb2.WaitOperationRequest(name=started.name, timeout=timeout),
            metadata=OPERATOR,
            timeout=10,
        )
        assert not still.done and time.monotonic() - waited >= 0.9

        other = respecialize("gates")
        listed = operations.ListOperations(
            operations_pb2.ListOperationsRequest(name="operations", filter="done = false"),
            metadata=OPERATOR,
            timeout=10,
        )
        assert [o.name for o in listed.operations] == [started.name, other.name]
        only_gates = operations.ListOperations(
            operations_pb2.ListOperationsRequest(filter='profile_name = "gates"'),
            metadata=OPERATOR,
            timeout=10,
        )
        assert [o.name for o in only_gates.operations] == [other.name]

        operations.CancelOperation(
            operations_pb2.CancelOperationRequest(name=started.name), metadata=OPERATOR
        )
        cancelled = get(started.name)
        assert cancelled.done and cancelled.error.code == grpc.StatusCode.CANCELLED.value[0]
        assert metadata_of(cancelled).HasField("end_time")
        operations.DeleteOperation(
            operations_pb2.DeleteOperationRequest(name=started.name), metadata=OPERATOR
        )
        assert code_of(lambda: get(started.name)) is grpc.StatusCode.NOT_FOUND

        # What a client gets wrong is its own fault, said so.
        assert code_of(lambda: respecialize("nothing-here")) is grpc.StatusCode.NOT_FOUND
        assert code_of(lambda: get("operations/nope")) is grpc.StatusCode.INVALID_ARGUMENT
        assert code_of(lambda: get("operations/" + "0" * 32)) is grpc.StatusCode.NOT_FOUND
        for bad in ("done = maybe", "profile_name = gates", "done = true AND", "arch = 1"):
            request = operations_pb2.ListOperationsRequest(filter=bad)
            assert (
                code_of(lambda r=request: operations.ListOperations(r, metadata=OPERATOR))
                is grpc.StatusCode.INVALID_ARGUMENT
            )
        too_long = operations_pb2.WaitOperationRequest(
            name=other.name, timeout=duration_pb2.Duration(seconds=301)
        )
        assert (
            code_of(lambda: operations.WaitOperation(too_long, metadata=OPERATOR))
            is grpc.StatusCode.INVALID_ARGUMENT
        )
        # Operations are an operator's: no token, or a stranger's, gets nothing.
        anonymous = operations_pb2.GetOperationRequest(name=other.name)
        assert code_of(lambda: operations.GetOperation(anonymous)) in (
            grpc.StatusCode.UNAUTHENTICATED,
        )
        assert (
            code_of(lambda: operations.GetOperation(anonymous, metadata=bearer("x" * 43)))
            is grpc.StatusCode.UNAUTHENTICATED
        )


def test_the_next_leader_takes_up_an_operation_the_last_left_open(setup: Setup):
    with setup.delivery() as first, grpc.insecure_channel(first.address) as channel:
        request = delivery_pb2.RespecializeRequest(name="profiles/cams")
        stub = delivery_pb2_grpc.DeliveryServiceStub(channel)
        started = stub.Respecialize(request, metadata=OPERATOR, timeout=10)
    # The replica that took the call is gone with the operation open; the profile is
    # deleted before another leads. The new leader takes the operation up, finds the
    # profile gone, and ends it so.
    setup.registry.DeleteProfile(
        registry_pb2.DeleteProfileRequest(name="profiles/cams"), metadata=OPERATOR, timeout=10
    )
    with setup.delivery() as second, grpc.insecure_channel(second.address) as channel:
        operations = operations_pb2_grpc.OperationsStub(channel)
        ended = operations.WaitOperation(
            operations_pb2.WaitOperationRequest(
                name=started.name, timeout=duration_pb2.Duration(seconds=30)
            ),
            metadata=OPERATOR,
            timeout=40,
        )
        assert ended.done, "the new leader did not take the operation up"
        assert ended.error.code == grpc.StatusCode.NOT_FOUND.value[0]
        assert "cams" in ended.error.message and from_status(ended.error) is None


@pytest.mark.integration
def test_the_cli_asks_follows_lists_and_cancels(setup: Setup, monkeypatch: pytest.MonkeyPatch):
    with setup.delivery() as delivery:
        monkeypatch.setenv("OFA_FLEET_DELIVERY", delivery.address)
        monkeypatch.setenv("OFA_FLEET_OPERATOR_TOKEN", OPERATOR_TOKEN)
        asked = json.loads(
            ofa_fleet("models", "respecialize", "cams", "--wait", "1", "--json").stdout
        )
        assert asked["profile"] == "cams" and not asked["done"]
        assert asked["name"].startswith("operations/") and asked["ended"] == ""
        listed = json.loads(ofa_fleet("models", "operations", "--running", "--json").stdout)
        assert [o["name"] for o in listed["operations"]] == [asked["name"]]
        shown = ofa_fleet("models", "operation", asked["name"]).stdout
        assert asked["name"] in shown and "cams" in shown
        cancelled = ofa_fleet("models", "operation", asked["name"], "--cancel", check=False)
        assert cancelled.returncode != 0 and cancelled.stderr.count("\n") == 1
        assert "CANCELLED" in cancelled.stderr
        assert json.loads(ofa_fleet("models", "operations", "--running", "--json").stdout) == {
            "operations": []
        }
        wrong = ofa_fleet("models", "operation", "operations/nope", check=False)
        assert wrong.returncode == 2 and "32 lower-case hex digits" in wrong.stderr
