"""SubmitLatencyTable: devices measure their own latency table, the registry merges them
into their profile's (real registry server, SQLite and PostgreSQL)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from ofa_fleet.contract.error_details import decode as decode_details
from ofa_fleet.contract.rollout import RolloutPolicy
from ofa_fleet.hardware.latency_table import LatencyTable
from ofa_fleet.hardware.profile_proto import profile_from_proto, profile_to_proto
from ofa_fleet.registry.store import RegistryStore
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.hardware.test_latency_merge import scaled
from tests.predictors.test_latency import TINY, synthetic_table
from tests.registry.conftest import example_profile
from tests.registry.server_thread import OPERATOR_TOKEN, bearer
from tests.registry.test_service import rpc_error

OPERATOR = bearer(OPERATOR_TOKEN)
PROFILE = example_profile()


def enrol(stub: RegistryServiceStub, devices: int, measure: bool = True, name: str = "pis"):
    spec = dataclasses.replace(PROFILE, name=name, measure_on_devices=measure)
    stub.CreateProfile(
        pb.CreateProfileRequest(profile=profile_to_proto(spec)), metadata=OPERATOR, timeout=10
    )
    created = stub.CreateFleet(
        pb.CreateFleetRequest(fleet_id=name, fleet=pb.Fleet(profile=f"profiles/{name}")),
        metadata=OPERATOR,
        timeout=10,
    )
    return [
        stub.RegisterDevice(
            pb.RegisterDeviceRequest(hardware_id=f"{name}-{i}"),
            metadata=bearer(created.enrolment_token),
            timeout=10,
        )
        for i in range(devices)
    ]


def measured(factor: float = 1.0, **changes) -> LatencyTable:
    runtime = PROFILE.runtime
    table = synthetic_table(
        TINY, threads=runtime.threads, execution_provider=runtime.execution_provider
    )
    return dataclasses.replace(scaled(table, factor), **changes)


def submit(stub, device, table: LatencyTable | str) -> pb.SubmitLatencyTableResponse:
    text = table if isinstance(table, str) else json.dumps(table.to_dict())
    return stub.SubmitLatencyTable(
        pb.SubmitLatencyTableRequest(name=device.device.name, latency_table_json=text),
        metadata=bearer(device.device_token),
        timeout=10,
    )


def profile_table(stub, name: str = "pis") -> tuple[int, LatencyTable | None]:
    got = stub.GetProfile(
        pb.GetProfileRequest(name=f"profiles/{name}"), metadata=OPERATOR, timeout=10
    )
    return got.profile.revision, profile_from_proto(got.profile.spec, "profile").latency_table


def test_the_profile_table_is_the_median_of_its_devices_without_the_busy_one(channel):
    stub = RegistryServiceStub(channel)
    devices = enrol(stub, 4)
    first = submit(stub, devices[0], measured(1.0))
    assert (first.profile_name, first.profile_revision) == ("pis", 2)
    assert (first.devices_merged, first.devices_dropped) == (1, 0)
    revision, table = profile_table(stub)
    assert revision == 2 and table == measured(1.0)

    again = submit(stub, devices[0], measured(1.0))  # a retry changes nothing
    assert again.profile_revision == 2

    submit(stub, devices[1], measured(1.1))
    submit(stub, devices[2], measured(1.2))
    last = submit(stub, devices[3], measured(4.0))  # measured while busy
    assert (last.devices_merged, last.devices_dropped) == (3, 1)
    revision, table = profile_table(stub)
    assert revision == last.profile_revision == 4  # the busy device moved nothing
    key = next(iter(table.layers))
    assert table.layers[key] == pytest.approx(measured(1.1).layers[key])
    assert table.devices == 3

    # A device deleted takes its table with it.
    stub.DeleteDevice(pb.DeleteDeviceRequest(name=devices[1].device.name), metadata=OPERATOR)
    after = submit(stub, devices[0], measured(1.0))
    # 1.0, 1.2 and the busy 4.0 are left: three tables, the busy one still out of line
    assert (after.devices_merged, after.devices_dropped) == (2, 1)


def test_a_table_for_a_new_space_replaces_the_old_one(channel):
    stub = RegistryServiceStub(channel)
    devices = enrol(stub, 2)
    submit(stub, devices[0], measured(1.0))
    submit(stub, devices[1], measured(1.0))
    other = dataclasses.replace(measured(2.0), space_fingerprint="ab" * 8)
    answer = submit(stub, devices[0], other)
    assert answer.devices_merged == 1
    assert profile_table(stub)[1].space_fingerprint == "ab" * 8


def replace_whole(stub, spec) -> pb.Profile:
    """UpdateProfile with mask "*", as `ofa-fleet profiles update FILE` sends a file."""
    request = pb.UpdateProfileRequest(
        profile=profile_to_proto(spec), update_mask=FieldMask(paths=["*"])
    )
    return stub.UpdateProfile(request, metadata=OPERATOR, timeout=10).profile


def test_an_update_without_a_table_keeps_the_one_its_devices_measured(channel):
    """A profile file has no table: updating from it (mask "*") must not drop the table
    the devices sent, which they send only once. A new runtime setting does drop it."""
    stub = RegistryServiceStub(channel)
    devices = enrol(stub, 2)
    submit(stub, devices[0], measured(1.0))
    submit(stub, devices[1], measured(1.2))
    revision, table = profile_table(stub)
    assert table is not None and table.devices == 2
    looser = dataclasses.replace(
        PROFILE,
        name="pis",
        measure_on_devices=True,
        constraints=dataclasses.replace(PROFILE.constraints, latency_budget_ms=9.0),
    )
    updated = replace_whole(stub, looser)
    assert updated.revision == revision + 1
    kept = profile_from_proto(updated.spec, "profile").latency_table
    assert kept == table
    again = replace_whole(stub, looser)
    assert again.revision == updated.revision  # the same file again: nothing changes
    other_runtime = dataclasses.replace(
        looser, runtime=dataclasses.replace(looser.runtime, threads=looser.runtime.threads + 1)
    )
    moved = replace_whole(stub, other_runtime)
    assert profile_from_proto(moved.spec, "profile").latency_table is None


def test_only_a_profile_that_asks_takes_tables(channel):
    stub = RegistryServiceStub(channel)
    (device,) = enrol(stub, 1, measure=False)
    error = rpc_error(stub.SubmitLatencyTable, request(device, measured()), own(device))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "measure_on_devices" in error.details()
    assert decode_details(error.trailing_metadata()).reason == "LATENCY_TABLE_NOT_ASKED"
    assert profile_table(stub) == (1, None)


@pytest.mark.parametrize(
    ("table", "says"),
    [
        (measured(threads=PROFILE.runtime.threads + 1), "thread"),
        (measured(graph_optimization="basic"), "graph optimization 'basic'"),
        (measured(devices=3), "merge of 3"),
        ("{not json", "not JSON"),
        ("x" * (1024 * 1024 + 1), "at most 1,048,576"),
        (json.dumps({**measured().to_dict(), "space_fingerprint": "../../x"}), "hex digits"),
        (json.dumps({**measured().to_dict(), "layers": {"a": -1}}), "not a latency"),
    ],
)
def test_a_table_that_cannot_be_merged_is_refused_and_changes_nothing(channel, table, says):
    stub = RegistryServiceStub(channel)
    (device,) = enrol(stub, 1)
    error = rpc_error(stub.SubmitLatencyTable, request(device, table), own(device))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert says in error.details()
    assert profile_table(stub) == (1, None)


def test_a_device_submits_for_itself_only(channel):
    stub = RegistryServiceStub(channel)
    first, second = enrol(stub, 2)
    error = rpc_error(stub.SubmitLatencyTable, request(second, measured()), own(first))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    error = rpc_error(stub.SubmitLatencyTable, request(first, measured()), OPERATOR)
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED


def request(device, table: LatencyTable | str) -> pb.SubmitLatencyTableRequest:
    text = table if isinstance(table, str) else json.dumps(table.to_dict())
    return pb.SubmitLatencyTableRequest(name=device.device.name, latency_table_json=text)


def own(device) -> tuple[tuple[str, str], ...]:
    return bearer(device.device_token)


def test_devices_submitting_at_once_are_all_merged(store: RegistryStore):
    """Each merge waits for the one before it (the profile's row is locked first), so none
    is computed without another's table and then written over it."""
    spec = dataclasses.replace(PROFILE, name="pis", measure_on_devices=True)
    store.create_profile(spec)
    store.create_fleet("pis", "pis", RolloutPolicy())
    devices = [store.register_device("pis", f"pi-{i}")[0].id for i in range(6)]
    with concurrent.futures.ThreadPoolExecutor(len(devices)) as pool:
        list(pool.map(lambda d: store.submit_latency_table(d, measured()), devices))
    table = store.get_profile("pis").spec.latency_table
    assert table is not None and table.devices == len(devices)
