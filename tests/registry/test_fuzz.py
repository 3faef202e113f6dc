"""Malformed and extreme messages at every RegistryService method: never INTERNAL, never down.

Messages are drawn from the proto descriptors themselves, so a field added later is fuzzed
without touching this file. Device methods are called with a real device token and, half
the time, that device's own id, so the fuzzing reaches past access control into
validation and the database (PostgreSQL, for one, refuses NUL characters in text).
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.registry.access_rules import RULES
from ofa_fleet.serving.access import Role
from ofa_fleet.v1 import common_pb2, registry_pb2
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.registry.conftest import example_profile
from tests.registry.test_service import OPERATOR, Fleet, bearer

SERVICE = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNIMPLEMENTED}
INT_RANGES = {
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_ENUM: (-(2**31), 2**31 - 1),
}
TEXT = st.one_of(
    st.text(max_size=24),
    st.sampled_from(["", "raspberry-pi-4", "pis", "d-" + "0" * 20, "x" * 70_000, "\x00", "é" * 64]),
    st.from_regex(r"[a-z0-9-]{1,70}", fullmatch=True),
)


def scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in INT_RANGES:
        low, high = INT_RANGES[field.type]
        return st.one_of(st.sampled_from([low, high, 0, 1]), st.integers(low, high))
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=64)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    return TEXT


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 3 or field.message_type.full_name.startswith("google.protobuf"):
                continue
            value: st.SearchStrategy[Any] = messages(field.message_type, depth + 1)
        else:
            value = scalar(field)
        if field.is_repeated:
            value = st.lists(value, max_size=20 if depth else 3)
        fields[field.name] = value
    return st.fixed_dictionaries({}, optional=fields)


def build(cls: type[Message], values: dict[str, Any]) -> Message:
    message = cls()
    for name, value in values.items():
        field = cls.DESCRIPTOR.fields_by_name[name]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            sub = field.message_type._concrete_class
            if field.is_repeated:
                getattr(message, name).extend(build(sub, v) for v in value)
            else:
                getattr(message, name).CopyFrom(build(sub, value))
        elif field.is_repeated:
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)
    return message


@pytest.fixture
def fleet(channel: grpc.Channel) -> Fleet:
    """Created once per test; hypothesis's examples share it (and the server)."""
    return Fleet(RegistryServiceStub(channel))


def fuzz_settings(examples: int) -> Any:
    """Hypothesis settings for fuzzing a running server: no per-example deadline (a call
    has its own), fixtures shared across examples."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.mark.parametrize("method", [m.name for m in SERVICE.methods])
@fuzz_settings(40)
@given(data=st.data())
def test_no_message_makes_the_server_fail(
    method: str, channel: grpc.Channel, fleet: Fleet, data: st.DataObject
) -> None:
    stub = RegistryServiceStub(channel)
    descriptor = SERVICE.methods_by_name[method]
    request = build(
        descriptor.input_type._concrete_class, data.draw(messages(descriptor.input_type))
    )
    roles = RULES[f"/{SERVICE.full_name}/{method}"].roles
    metadata = OPERATOR
    if Role.ENROLMENT in roles:
        metadata = bearer(fleet.enrolment)
    elif Role.DEVICE in roles and Role.OPERATOR not in roles:
        device = fleet.devices[0]
        metadata = bearer(device.device_token)
        if "device_id" in descriptor.input_type.fields_by_name and data.draw(st.booleans()):
            request.device_id = device.device.id  # type: ignore[attr-defined]
    error = _call(getattr(stub, method), request, metadata, descriptor.server_streaming)
    check_answer(error, method)
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def check_answer(error: grpc.RpcError | None, method: str) -> None:
    """A fuzzed call's answer: never INTERNAL, UNKNOWN or UNIMPLEMENTED, and an error
    says why (a deadline passed aside)."""
    if error is None or error.code() is grpc.StatusCode.CANCELLED:
        return
    assert error.code() not in FORBIDDEN, f"{method}: {error.code()} {error.details()}"
    if error.code() is not grpc.StatusCode.DEADLINE_EXCEEDED:
        assert error.details(), f"{method}: {error.code()} without a message"


def message_then_bytes(
    channel: grpc.Channel,
    call: Any,
    service: Any,
    method: str,
    request: Message,
    raw: bytes,
    metadata: Any,
) -> None:
    """`request`, then `raw` bytes undecoded, at one method of `service` (a descriptor);
    each answer checked, and the server still SERVING after both."""
    descriptor = service.methods_by_name[method]
    streaming = descriptor.server_streaming
    check_answer(_call(call, request, metadata, streaming), method)
    path = f"/{service.full_name}/{method}"
    raw_call = channel.unary_stream(path) if streaming else channel.unary_unary(path)
    check_answer(_call(raw_call, raw, metadata, streaming), method)  # type: ignore[arg-type]
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def _call(call: Any, request: Message, metadata: Any, streaming: bool) -> grpc.RpcError | None:
    """The call's error, if any; a stream is read for its first few messages."""
    try:
        if streaming:
            stream = call(request, metadata=metadata, timeout=1.0)
            for _ in zip(range(3), stream, strict=False):
                pass
            stream.cancel()
        else:
            call(request, metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        return error
    return None


def _leaves(message: Message, path: str = "") -> list[tuple[str, FieldDescriptor, Message]]:
    """Every scalar field of a message and its sub-messages, with its dotted path."""
    found = []
    for field in message.DESCRIPTOR.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if not field.is_repeated:
                found += _leaves(getattr(message, field.name), f"{path}{field.name}.")
        elif not field.is_repeated:
            found.append((f"{path}{field.name}", field, message))
    return found


VALID = profile_to_proto(example_profile())
LEAVES = [path for path, _, _ in _leaves(VALID)]


@pytest.mark.parametrize("path", LEAVES)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_one_bad_field_in_a_valid_profile_is_named(
    path: str, channel: grpc.Channel, data: st.DataObject
) -> None:
    """A valid profile with one field set to an extreme value: stored, or refused by name."""
    profile = common_pb2.HardwareProfile()
    profile.CopyFrom(VALID)
    profile.name = data.draw(st.from_regex(r"[a-z][a-z0-9]{0,20}", fullmatch=True))
    _, field, holder = next(leaf for leaf in _leaves(profile) if leaf[0] == path)
    if field.name == "name" and holder is profile:
        value = data.draw(TEXT)
    else:
        value = data.draw(scalar(field))
    setattr(holder, field.name, value)
    stub = RegistryServiceStub(channel)
    for call, request in (
        (stub.CreateProfile, pb.CreateProfileRequest(profile=profile)),
        (stub.UpdateProfile, pb.UpdateProfileRequest(profile=profile)),
    ):
        error = _call(call, request, OPERATOR, streaming=False)
        if error is None or error.code() in (
            grpc.StatusCode.ALREADY_EXISTS,
            grpc.StatusCode.NOT_FOUND,
        ):
            continue
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (path, error.details())
        leaf = path.rsplit(".", 1)[-1]
        if holder.DESCRIPTOR.full_name == "google.protobuf.Duration":
            leaf = path.rsplit(".", 2)[-2]  # a Duration is one value: its field is named
        assert leaf in error.details() or "name" in error.details(), (path, error.details())
