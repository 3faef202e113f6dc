"""Bytes that are no valid message get INVALID_ARGUMENT and no traceback, on every server
(the shared interceptor parses them), with or without a token, unary call or stream."""

from __future__ import annotations

import logging

import grpc
import pytest

from tests.delivery.world import OPERATOR, World
from tests.registry.server_thread import bearer

GARBAGE = b"\xff" * 20
# Field 1, a string on these methods, holding bytes that are not UTF-8.
BAD_UTF8 = b"\x0a\x02\xff\xfe"
BOTH = (GARBAGE, BAD_UTF8)
# GetModelManifest's string is field 3 (device).
BAD_UTF8_IN_3 = b"\x1a\x02\xff\xfe"
CALLS = [
    ("registry", "/ofa_fleet.v1.RegistryService/GetProfile", "unary", BOTH),
    ("registry", "/ofa_fleet.v1.RegistryService/RegisterDevice", "unary", BOTH),
    ("registry", "/ofa_fleet.v1.RegistryService/WatchChanges", "stream", (GARBAGE,)),
    (
        "delivery",
        "/ofa_fleet.v1.DeliveryService/GetModelManifest",
        "unary",
        (GARBAGE, BAD_UTF8_IN_3),
    ),
    ("delivery", "/ofa_fleet.v1.DeliveryService/ReadModel", "stream", BOTH),
]


def call(channel: grpc.Channel, method: str, kind: str, payload: bytes, metadata) -> None:  # type: ignore[no-untyped-def]
    if kind == "unary":
        channel.unary_unary(method)(payload, metadata=metadata, timeout=10)
    else:
        list(channel.unary_stream(method)(payload, metadata=metadata, timeout=10))


def test_malformed_requests_are_invalid_arguments_without_a_traceback(
    world: World, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.ERROR)
    addresses = {"registry": world.registry_address, "delivery": world.delivery_address}
    device = bearer(world.devices[0].device_token)
    for service, method, kind, payloads in CALLS:
        with grpc.insecure_channel(addresses[service]) as channel:
            for payload in payloads:
                for metadata in ((), OPERATOR, device):
                    with pytest.raises(grpc.RpcError) as error:
                        call(channel, method, kind, payload, metadata)
                    code, details = error.value.code(), error.value.details()
                    assert code is grpc.StatusCode.INVALID_ARGUMENT, (method, payload, details)
                    assert "not a valid message" in details
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
