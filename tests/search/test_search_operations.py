"""A search belongs to the service, not to the call: identical requests share it, it runs
on for a grace period after its last caller goes (so a caller that lost its stream joins
it again), and google.longrunning.Operations follows, waits for and cancels it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.search.specializer import Specializer
from ofa_fleet.search.stream import SpecializeStream
from ofa_fleet.v1 import search_pb2
from tests.registry.server_thread import bearer
from tests.search.conftest import example_profile
from tests.search.ray_processes import ray_workers
from tests.search.server_thread import SearchServerThread
from tests.server_process import OPERATOR_TOKEN

pytestmark = pytest.mark.slow

AUTH = bearer(OPERATOR_TOKEN)
GRACE_SECONDS = 4.0


@pytest.fixture(scope="module")
def server(specializer: Specializer) -> Iterator[SearchServerThread]:
    with SearchServerThread(specializer, detached_grace_seconds=GRACE_SECONDS) as running:
        yield running


@pytest.fixture
def channel(server: SearchServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as opened:
        yield opened


def request(seed: int, slow: bool = False) -> search_pb2.SpecializeRequest:
    options = search_pb2.SearchOptions(seed=seed, skip_cache=True, rerank_top_k=1)
    if slow:  # runs until stopped
        options.population, options.max_generations, options.patience = 1000, 1000, 1000
    return search_pb2.SpecializeRequest(
        profile=profile_to_proto(example_profile("raspberry-pi-3")), options=options
    )


def wait_idle(server: SearchServerThread, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while server.active or any("evolve" in n for n in ray_workers().values()):
        assert time.monotonic() < deadline, "the search kept running"
        time.sleep(0.1)


def get(channel: grpc.Channel, name: str) -> operations_pb2.Operation:
    stub = operations_pb2_grpc.OperationsStub(channel)
    return stub.GetOperation(operations_pb2.GetOperationRequest(name=name), metadata=AUTH)


def metadata_of(operation: operations_pb2.Operation) -> search_pb2.SpecializeMetadata:
    metadata = search_pb2.SpecializeMetadata()
    assert operation.metadata.Unpack(metadata)
    return metadata


def test_identical_requests_share_one_search_and_its_result(server, channel):
    stub = server.stub(channel)
    results: list[object] = []

    def follow() -> None:
        stream = SpecializeStream()
        for response in stub.Specialize(request(seed=11), metadata=AUTH, timeout=300):
            stream.feed(response)
        results.append(stream.finish())

    def searched() -> float:
        # skip_cache: every search that ran counts as "ok", none as "cached".
        total = "ofa_fleet_search_specializations_total"
        return server.metrics.registry.get_sample_value(total, {"outcome": "ok"}) or 0.0

    before = searched()
    callers = [threading.Thread(target=follow) for _ in range(2)]
    for caller in callers:
        caller.start()
        time.sleep(0.3)  # the second asks while the first's search runs
    for caller in callers:
        caller.join(timeout=300)
    assert len(results) == 2 and searched() == before + 1  # one search for both
    first, second = results
    assert first.result.operation_name == second.result.operation_name
    assert first.result.operation_name.startswith("operations/")
    assert first.result.model_sha256 == second.result.model_sha256
    assert first.onnx_bytes == second.onnx_bytes

    done = get(channel, first.result.operation_name)
    assert done.done and not done.HasField("error")
    result = search_pb2.SpecializeResult()
    assert done.response.Unpack(result) and result.model_sha256 == first.result.model_sha256
    assert metadata_of(done).HasField("end_time") and metadata_of(done).callers == 0


def test_a_caller_that_lost_its_stream_asks_again_and_joins_the_search(server, channel):
    stub = server.stub(channel)
    call = stub.Specialize(request(seed=12, slow=True), metadata=AUTH)
    name = next(call).progress.operation_name
    call.cancel()  # a delivery leader failing over
    time.sleep(1.0)
    running = get(channel, name)
    assert not running.done and metadata_of(running).callers == 0
    assert metadata_of(running).progress.candidates_evaluated > 0
    assert server.active == 1  # it runs on, detached

    again = stub.Specialize(request(seed=12, slow=True), metadata=AUTH)
    joined = next(again).progress
    assert joined.operation_name == name  # the same search, not a new one
    assert metadata_of(get(channel, name)).callers == 1
    time.sleep(GRACE_SECONDS + 1)
    assert server.active == 1  # followed again: no grace period runs out
    again.cancel()
    time.sleep(1.0)
    assert server.active == 1  # detached once more ...
    wait_idle(server, timeout=GRACE_SECONDS + 30)  # ... and stopped once its grace passed
    stopped = get(channel, name)
    assert stopped.done and stopped.error.code == grpc.StatusCode.CANCELLED.value[0]


def test_an_operator_waits_for_cancels_and_deletes_a_search(server, channel):
    stub = server.stub(channel)
    operations = operations_pb2_grpc.OperationsStub(channel)
    call = stub.Specialize(request(seed=13, slow=True), metadata=AUTH)
    name = next(call).progress.operation_name
    waited = operations.WaitOperation(
        operations_pb2.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(seconds=1)),
        metadata=AUTH,
        timeout=10,
    )
    assert not waited.done
    listed = operations.ListOperations(
        operations_pb2.ListOperationsRequest(filter="done = false"), metadata=AUTH
    )
    assert name in [o.name for o in listed.operations]

    operations.CancelOperation(operations_pb2.CancelOperationRequest(name=name), metadata=AUTH)
    with pytest.raises(grpc.RpcError) as told:
        list(call)
    assert told.value.code() is grpc.StatusCode.CANCELLED  # its caller is told
    wait_idle(server)
    ended = operations.WaitOperation(
        operations_pb2.WaitOperationRequest(name=name), metadata=AUTH, timeout=30
    )
    assert ended.done and ended.error.code == grpc.StatusCode.CANCELLED.value[0]
    operations.DeleteOperation(operations_pb2.DeleteOperationRequest(name=name), metadata=AUTH)

    def code(call_it) -> grpc.StatusCode:
        with pytest.raises(grpc.RpcError) as error:
            call_it()
        return error.value.code()

    assert code(lambda: get(channel, name)) is grpc.StatusCode.NOT_FOUND
    assert code(lambda: get(channel, "operations/x")) is grpc.StatusCode.INVALID_ARGUMENT
    bad_filter = operations_pb2.ListOperationsRequest(filter="profile = x")
    assert (
        code(lambda: operations.ListOperations(bad_filter, metadata=AUTH))
        is grpc.StatusCode.INVALID_ARGUMENT
    )
    anonymous = operations_pb2.GetOperationRequest(name=name)
    assert code(lambda: operations.GetOperation(anonymous)) is grpc.StatusCode.UNAUTHENTICATED
