"""Random messages and random bytes at every SearchService method: never INTERNAL or
UNKNOWN, never a traceback, the server still SERVING (the registry's descriptor-driven
strategies, as delivery's fuzzing uses them)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ofa_fleet.search.specializer import Specializer
from ofa_fleet.v1 import search_pb2
from tests.registry.server_thread import bearer
from tests.registry.test_fuzz import FORBIDDEN, _call, build, messages
from tests.search.server_thread import SearchServerThread
from tests.server_process import OPERATOR_TOKEN

pytestmark = pytest.mark.slow

SERVICE = search_pb2.DESCRIPTOR.services_by_name["SearchService"]
FUZZ = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TOKENS = [bearer(OPERATOR_TOKEN), (), bearer("ofa_device_x"), bearer("ofa_enrol_x")]


@pytest.fixture(scope="module")
def server(specializer: Specializer) -> Iterator[SearchServerThread]:
    with SearchServerThread(specializer) as running:
        yield running


def _checked(error: grpc.RpcError | None, method: str) -> None:
    if error is None or error.code() is grpc.StatusCode.CANCELLED:
        return
    assert error.code() not in FORBIDDEN, f"{method}: {error.code()} {error.details()}"
    if error.code() is not grpc.StatusCode.DEADLINE_EXCEEDED:
        assert error.details(), f"{method}: {error.code()} without a message"


@pytest.mark.parametrize("method", [m.name for m in SERVICE.methods])
@FUZZ
@given(data=st.data())
def test_no_message_or_bytes_make_search_fail(
    method: str, server: SearchServerThread, data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    descriptor = SERVICE.methods_by_name[method]
    request = build(
        descriptor.input_type._concrete_class, data.draw(messages(descriptor.input_type))
    )
    metadata = data.draw(st.sampled_from(TOKENS))
    path = f"/{SERVICE.full_name}/{method}"
    with grpc.insecure_channel(server.address) as channel:
        call = getattr(server.stub(channel), method)
        _checked(_call(call, request, metadata, descriptor.server_streaming), method)
        raw = data.draw(st.binary(max_size=64))
        raw_call = (
            channel.unary_stream(path) if descriptor.server_streaming else channel.unary_unary(path)
        )
        _checked(_call(raw_call, raw, metadata, descriptor.server_streaming), method)  # type: ignore[arg-type]
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
