"""Random messages and random bytes at every DeliveryService method: never INTERNAL or
UNKNOWN, never a traceback, the server still SERVING (the registry's own fuzzing is in
tests/registry/test_fuzz.py, whose descriptor-driven strategies this reuses)."""

from __future__ import annotations

import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ofa_fleet.delivery.serve.access_rules import RULES
from ofa_fleet.serving.access import Role
from ofa_fleet.v1 import delivery_pb2
from tests.delivery.world import OPERATOR, World
from tests.registry.server_thread import bearer
from tests.registry.test_fuzz import FORBIDDEN, _call, build, messages

SERVICE = delivery_pb2.DESCRIPTOR.services_by_name["DeliveryService"]
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _checked(error: grpc.RpcError | None, method: str) -> None:
    if error is None or error.code() in (grpc.StatusCode.CANCELLED,):
        return
    assert error.code() not in FORBIDDEN, f"{method}: {error.code()} {error.details()}"
    if error.code() is not grpc.StatusCode.DEADLINE_EXCEEDED:
        assert error.details(), f"{method}: {error.code()} without a message"


@pytest.mark.parametrize("method", [m.name for m in SERVICE.methods])
@FUZZ
@given(data=st.data())
def test_no_message_or_bytes_make_delivery_fail(
    method: str, world: World, data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    if not world.store.current("raspberry-pi-4"):
        world.add_model(1, size=5_000)
    descriptor = SERVICE.methods_by_name[method]
    request = build(
        descriptor.input_type._concrete_class, data.draw(messages(descriptor.input_type))
    )
    device = world.devices[0]
    metadata = data.draw(
        st.sampled_from([OPERATOR, bearer(device.device_token), (), bearer("ofa_enrol_x")])
    )
    roles = RULES[f"/{SERVICE.full_name}/{method}"].roles
    names_a_device = "device_id" in descriptor.input_type.fields_by_name
    if Role.DEVICE in roles and names_a_device and data.draw(st.booleans()):
        request.device_id = device.device.id  # type: ignore[attr-defined]
    with grpc.insecure_channel(world.delivery_address) as channel:
        call = getattr(world.delivery, method)
        _checked(_call(call, request, metadata, descriptor.server_streaming), method)
        raw = data.draw(st.binary(max_size=64))
        path = f"/{SERVICE.full_name}/{method}"
        if descriptor.server_streaming:
            raw_call = channel.unary_stream(path)
        else:
            raw_call = channel.unary_unary(path)
        _checked(_call(raw_call, raw, metadata, descriptor.server_streaming), method)  # type: ignore[arg-type]
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
