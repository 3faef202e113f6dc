"""Random messages and random bytes at every SearchService method: never INTERNAL or
UNKNOWN, never a traceback, the server still SERVING (the registry's descriptor-driven
strategies, as delivery's fuzzing uses them)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ofa_fleet.search.specializer import Specializer
from ofa_fleet.v1 import search_pb2
from tests.registry.server_thread import bearer
from tests.registry.test_fuzz import build, fuzz_settings, message_then_bytes, messages
from tests.search.server_thread import SearchServerThread
from tests.server_process import OPERATOR_TOKEN

pytestmark = pytest.mark.slow

SERVICE = search_pb2.DESCRIPTOR.services_by_name["SearchService"]
FUZZ = fuzz_settings(20)
TOKENS = [bearer(OPERATOR_TOKEN), (), bearer("ofa_device_x"), bearer("ofa_enrol_x")]


@pytest.fixture(scope="module")
def server(specializer: Specializer) -> Iterator[SearchServerThread]:
    with SearchServerThread(specializer) as running:
        yield running


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
    with grpc.insecure_channel(server.address) as channel:
        raw = data.draw(st.binary(max_size=64))
        call = getattr(server.stub(channel), method)
        message_then_bytes(channel, call, SERVICE, method, request, raw, metadata)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
