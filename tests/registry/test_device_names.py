"""Devices are named fleets/{fleet}/devices/{device}: every call names them so, a name of
another form is INVALID_ARGUMENT naming the field, and the right id under another fleet's
name is not that device (NOT_FOUND for an operator, PERMISSION_DENIED for a device)."""

from __future__ import annotations

import grpc
import pytest

from ofa_fleet.contract.error_details import decode as decode_details
from ofa_fleet.contract.resource_names import parse_device_name, parse_fleet_parent
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.registry.server_thread import OPERATOR_TOKEN, bearer
from tests.registry.test_service import Fleet, stub  # noqa: F401 - the fixture

OPERATOR = bearer(OPERATOR_TOKEN)


def failure(call, request, metadata) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as error:
        call(request, metadata=metadata, timeout=10)
    return error.value


def test_devices_are_named_by_fleet_and_id(stub: RegistryServiceStub) -> None:  # noqa: F811
    fleet = Fleet(stub)
    mine = fleet.devices[0]
    assert mine.device.name == f"fleets/pis/devices/{mine.device.id}"
    own = bearer(mine.device_token)
    stub.Heartbeat(pb.HeartbeatRequest(name=mine.device.name), metadata=own, timeout=10)
    got = stub.GetDevice(pb.GetDeviceRequest(name=mine.device.name), metadata=OPERATOR)
    assert got.device.name == mine.device.name and got.device.fleet == "pis"

    elsewhere = f"fleets/gates/devices/{mine.device.id}"
    denied = failure(stub.Heartbeat, pb.HeartbeatRequest(name=elsewhere), own)
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    missing = failure(stub.GetDevice, pb.GetDeviceRequest(name=elsewhere), OPERATOR)
    assert missing.code() is grpc.StatusCode.NOT_FOUND
    kept = failure(stub.DeleteDevice, pb.DeleteDeviceRequest(name=elsewhere), OPERATOR)
    assert kept.code() is grpc.StatusCode.NOT_FOUND
    assert stub.GetDevice(pb.GetDeviceRequest(name=mine.device.name), metadata=OPERATOR)

    for bad in ("", mine.device.id, f"fleets/pis/{mine.device.id}", "fleets/PIS/devices/d-1"):
        error = failure(stub.GetDevice, pb.GetDeviceRequest(name=bad), OPERATOR)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, bad
        details = decode_details(error.trailing_metadata())
        assert details is not None and details.field_path == "name"


def test_listings_take_a_fleet_or_every_fleet_as_parent(stub: RegistryServiceStub) -> None:  # noqa: F811
    fleet = Fleet(stub)
    names = sorted(d.device.name for d in fleet.devices)

    def listed(parent: str) -> list[str]:
        answer = stub.ListDevices(pb.ListDevicesRequest(parent=parent), metadata=OPERATOR)
        return sorted(d.name for d in answer.devices)

    assert listed("fleets/pis") == listed("fleets/-") == names
    assert (
        failure(stub.ListDevices, pb.ListDevicesRequest(parent="fleets/gates"), OPERATOR).code()
        is grpc.StatusCode.NOT_FOUND
    )
    for bad in ("", "pis", "fleets", "fleets/pis/devices"):
        error = failure(stub.ListDevices, pb.ListDevicesRequest(parent=bad), OPERATOR)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, bad


def test_names_parse_into_their_segments() -> None:
    name = parse_device_name("fleets/pis/devices/d-0123456789abcdef0123")
    assert (name.fleet, name.device) == ("pis", "d-0123456789abcdef0123")
    assert str(name) == "fleets/pis/devices/d-0123456789abcdef0123"
    assert parse_fleet_parent("fleets/pis") == "pis" and parse_fleet_parent("fleets/-") is None
    with pytest.raises(InvalidArgumentError, match="device's name"):
        parse_device_name("fleets/pis/devices/d-0123456789abcdef0123/x")
    with pytest.raises(InvalidArgumentError, match="fleets/- for every fleet"):
        parse_fleet_parent("fleets/-/x")
