"""Random messages and random bytes at every DeliveryService method: never INTERNAL or
UNKNOWN, never a traceback, the server still SERVING (the registry's own fuzzing is in
tests/registry/test_fuzz.py, whose descriptor-driven strategies this reuses)."""

from __future__ import annotations

import logging

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ofa_fleet.delivery.serve.access_rules import RULES
from ofa_fleet.serving.access import Role
from ofa_fleet.v1 import delivery_pb2
from tests.delivery.world import OPERATOR, World
from tests.registry.server_thread import bearer
from tests.registry.test_fuzz import build, fuzz_settings, message_then_bytes, messages

SERVICE = delivery_pb2.DESCRIPTOR.services_by_name["DeliveryService"]
FUZZ = fuzz_settings(25)


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
        raw = data.draw(st.binary(max_size=64))
        call = getattr(world.delivery, method)
        message_then_bytes(channel, call, SERVICE, method, request, raw, metadata)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
