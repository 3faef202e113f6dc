"""RegistryService over a real loopback socket: access control, errors, the change feed."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from ofa_fleet.contract.error_details import DETAILS_KEY, ErrorDetails
from ofa_fleet.contract.error_details import decode as decode_details
from ofa_fleet.hardware.profile_proto import budget_ms, profile_to_proto
from ofa_fleet.registry.access_rules import RULES, SERVICE
from ofa_fleet.v1 import common_pb2, registry_pb2
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.registry.conftest import example_profile
from tests.registry.server_thread import OPERATOR_TOKEN, RegistryServerThread, bearer

OPERATOR = bearer(OPERATOR_TOKEN)
SHA = "cd" * 32


class Fleet:
    """A profile, a fleet and two enrolled devices on a running registry."""

    def __init__(self, stub: RegistryServiceStub) -> None:
        spec = profile_to_proto(example_profile())
        stub.CreateProfile(pb.CreateProfileRequest(profile=spec), metadata=OPERATOR, timeout=10)
        created = stub.CreateFleet(
            pb.CreateFleetRequest(fleet_id="pis", fleet=pb.Fleet(profile=f"profiles/{spec.name}")),
            metadata=OPERATOR,
            timeout=10,
        )
        self.enrolment = created.enrolment_token
        self.devices = [
            stub.RegisterDevice(
                pb.RegisterDeviceRequest(hardware_id=f"sn-{i}"),
                metadata=bearer(self.enrolment),
                timeout=10,
            )
            for i in range(2)
        ]


@pytest.fixture
def stub(channel: grpc.Channel) -> RegistryServiceStub:
    return RegistryServiceStub(channel)


def rpc_error(call, request, metadata) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=metadata, timeout=10)
    return caught.value


def test_every_method_has_an_access_rule() -> None:
    methods = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].methods
    assert {f"/{SERVICE}/{m.name}" for m in methods} == set(RULES)


def test_device_lifecycle(stub: RegistryServiceStub) -> None:
    fleet = Fleet(stub)
    first = fleet.devices[0]
    assert first.device.fleet == "pis" and first.device.hardware_id == "sn-0"
    assert first.device_token.startswith("ofa_device_")
    own = bearer(first.device_token)
    stub.Heartbeat(pb.HeartbeatRequest(name=first.device.name), metadata=own, timeout=10)
    status = pb.StatusReport(
        model_sha256=SHA, measured_latency_ms=2.5, onnxruntime_version="1.22.0", errors=["oops"]
    )
    reported = stub.ReportStatus(
        pb.ReportStatusRequest(name=first.device.name, report=status), metadata=own, timeout=10
    ).device
    assert reported.status.model_sha256 == SHA and list(reported.status.errors) == ["oops"]
    assert reported.status.report_time.seconds > 0
    seen_by_device = stub.GetDevice(
        pb.GetDeviceRequest(name=first.device.name), metadata=own, timeout=10
    ).device
    assert seen_by_device == reported
    listed = stub.ListDevices(
        pb.ListDevicesRequest(parent="fleets/pis"), metadata=OPERATOR, timeout=10
    )
    assert {d.id for d in listed.devices} == {d.device.id for d in fleet.devices}
    assert first.device_token.encode() not in listed.SerializeToString()
    stub.DeleteDevice(pb.DeleteDeviceRequest(name=first.device.name), metadata=OPERATOR)
    error = rpc_error(stub.Heartbeat, pb.HeartbeatRequest(name=first.device.name), own)
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED  # its token died with it


def test_every_answer_to_a_device_names_the_registry_heartbeat_interval(db_url: str) -> None:
    with (
        RegistryServerThread(db_url, heartbeat_seconds=7.5) as registry,
        registry.channel() as channel,
    ):
        stub = RegistryServiceStub(channel)
        enrolled = Fleet(stub).devices[0]
        own = bearer(enrolled.device_token)
        beat = stub.Heartbeat(
            pb.HeartbeatRequest(name=enrolled.device.name), metadata=own, timeout=10
        )
        report = pb.ReportStatusRequest(
            name=enrolled.device.name, report=pb.StatusReport(model_sha256=SHA)
        )
        reported = stub.ReportStatus(report, metadata=own, timeout=10)
    for answer in (enrolled, beat, reported):
        assert answer.heartbeat_interval.ToMilliseconds() == 7_500


def test_retried_device_writes_are_answered_once(stub: RegistryServiceStub) -> None:
    """What a device's retry after a lost response sends: the same request, request id and
    all. One device, its cost counted once."""
    fleet = Fleet(stub)
    enrol = pb.RegisterDeviceRequest(hardware_id="sn-9", request_id=str(uuid.uuid4()))
    first = stub.RegisterDevice(enrol, metadata=bearer(fleet.enrolment), timeout=10)
    retried = stub.RegisterDevice(enrol, metadata=bearer(fleet.enrolment), timeout=10)
    assert retried.device == first.device and retried.device_token != first.device_token
    lost = rpc_error(stub.WhoAmI, pb.WhoAmIRequest(), bearer(first.device_token))
    assert lost.code() is grpc.StatusCode.UNAUTHENTICATED  # the lost answer's token is dead
    own = bearer(retried.device_token)
    assert stub.WhoAmI(pb.WhoAmIRequest(), metadata=own, timeout=10).device.id == first.device.id
    listed = stub.ListDevices(
        pb.ListDevicesRequest(parent="fleets/pis"), metadata=OPERATOR, timeout=10
    )
    assert len(listed.devices) == 3  # the fixture's two and this one
    report = pb.ReportStatusRequest(
        name=first.device.name,
        report=pb.StatusReport(
            model_sha256=SHA,
            measured_latency_ms=2.5,
            profiling_cost=common_pb2.EnergyCost(cpu_seconds=1.5, energy_joules=3.0),
        ),
        request_id=str(uuid.uuid4()),
    )
    once = stub.ReportStatus(report, metadata=own, timeout=10).device
    twice = stub.ReportStatus(report, metadata=own, timeout=10).device
    assert twice.revision == once.revision  # no new revision: no change for watchers
    assert twice.profiling_cost_total.cpu_seconds == 1.5
    # Once the device has used its token, its enrolment id cannot take the device over.
    late = rpc_error(stub.RegisterDevice, enrol, bearer(fleet.enrolment))
    assert late.code() is grpc.StatusCode.ALREADY_EXISTS and first.device.id in late.details()
    other = pb.RegisterDeviceRequest(hardware_id="sn-10", request_id=enrol.request_id)
    clash = rpc_error(stub.RegisterDevice, other, bearer(fleet.enrolment))
    assert clash.code() is grpc.StatusCode.INVALID_ARGUMENT and "another hardware_id" in (
        clash.details()
    )
    malformed = pb.RegisterDeviceRequest(hardware_id="sn-11", request_id="not-a-uuid")
    bad = rpc_error(stub.RegisterDevice, malformed, bearer(fleet.enrolment))
    assert bad.code() is grpc.StatusCode.INVALID_ARGUMENT and "is not a UUID" in bad.details()


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ((), "needs 'authorization: Bearer <token>'"),
        ((("authorization", "Basic abc"),), "must read 'Bearer <token>'"),
        (bearer("ofa_device_forged"), "not one this system issued"),
        (bearer(OPERATOR_TOKEN + "x"), "not one this system issued"),
    ],
)
def test_unauthenticated_calls(stub: RegistryServiceStub, metadata, message) -> None:  # type: ignore[no-untyped-def]
    # GetDevice takes the operator's token or a device's: each kind is checked for real.
    request = pb.GetDeviceRequest(name="fleets/pis/devices/d-" + "0" * 20)
    error = rpc_error(stub.GetDevice, request, metadata)
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert message in error.details()


def test_a_kind_of_token_a_call_never_takes_is_permission_denied(
    stub: RegistryServiceStub,
) -> None:
    for token in ("ofa_device_forged", "ofa_enrol_forged"):
        error = rpc_error(stub.ListProfiles, pb.ListProfilesRequest(), bearer(token))
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "needs the operator token" in error.details()


def test_tokens_only_reach_what_they_are_for(stub: RegistryServiceStub) -> None:
    fleet = Fleet(stub)
    mine, other = fleet.devices
    as_device = bearer(mine.device_token)
    denied = [
        (stub.ListProfiles, pb.ListProfilesRequest(), as_device, "needs the operator token"),
        (
            stub.ListDevices,
            pb.ListDevicesRequest(),
            bearer(fleet.enrolment),
            "operator token; this call carries an enrolment token",
        ),
        (
            stub.RegisterDevice,
            pb.RegisterDeviceRequest(),
            OPERATOR,
            "needs the enrolment token; this call carries an operator token",
        ),
        (
            stub.Heartbeat,
            pb.HeartbeatRequest(name=other.device.name),
            as_device,
            "only be used for its own record",
        ),
        (
            stub.GetDevice,
            pb.GetDeviceRequest(name=other.device.name),
            as_device,
            "only be used for its own record",
        ),
        (
            stub.Heartbeat,
            pb.HeartbeatRequest(name=mine.device.name),
            OPERATOR,
            "needs the device token",
        ),
    ]
    for call, request, metadata, message in denied:
        error = rpc_error(call, request, metadata)
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED, (call, error.details())
        assert message in error.details()


def test_validation_errors_name_the_field(stub: RegistryServiceStub) -> None:
    spec = profile_to_proto(example_profile())
    cases = [
        (pb.CreateProfileRequest(), "profile is required"),
        (pb.CreateProfileRequest(profile=common_pb2.HardwareProfile(name="x")), "must be positive"),
    ]
    spec.runtime.threads = 64
    cases.append((pb.CreateProfileRequest(profile=spec), "runtime.threads is 64 but the CPU has 4"))
    for request, message in cases:
        error = rpc_error(stub.CreateProfile, request, OPERATOR)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert message in error.details(), error.details()
    error = rpc_error(stub.GetFleet, pb.GetFleetRequest(name="fleets/No Such"), OPERATOR)
    assert "1-63 lower-case letters" in error.details()
    error = rpc_error(stub.GetFleet, pb.GetFleetRequest(name="fleets/missing"), OPERATOR)
    assert error.code() is grpc.StatusCode.NOT_FOUND
    device = Fleet(stub).devices[0]
    own = bearer(device.device_token)
    error = rpc_error(stub.ReportStatus, pb.ReportStatusRequest(name=device.device.name), own)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "report is required" in error.details()
    empty = pb.StatusReport(model_sha256="nope")
    request = pb.ReportStatusRequest(name=device.device.name, report=empty)
    assert "report.model_sha256" in rpc_error(stub.ReportStatus, request, own).details()


def test_an_update_changes_the_fields_its_mask_names_or_else_those_it_sets(
    stub: RegistryServiceStub,
) -> None:
    spec = profile_to_proto(example_profile())
    spec.constraints.min_top1 = 0.9
    stub.CreateProfile(pb.CreateProfileRequest(profile=spec), metadata=OPERATOR)

    def update(profile: common_pb2.HardwareProfile, *paths: str) -> common_pb2.HardwareProfile:
        request = pb.UpdateProfileRequest(profile=profile)
        if paths:
            request.update_mask.paths.extend(paths)
        return stub.UpdateProfile(request, metadata=OPERATOR, timeout=10).profile.spec

    # A client that knows only the name and the budget (no mask) changes only the budget.
    partial = common_pb2.HardwareProfile(name=spec.name)
    partial.constraints.latency_budget.FromMilliseconds(1200)
    stored = update(partial)
    assert budget_ms(stored.constraints) == 1200.0
    # The budget is one value: 0.2 s replaces 1.2 s whole, though it sets no seconds.
    partial.constraints.latency_budget.FromMilliseconds(200)
    assert budget_ms(update(partial).constraints) == 200.0
    partial.constraints.latency_budget.FromMilliseconds(3)
    stored = update(partial)
    assert budget_ms(stored.constraints) == 3.0
    assert stored.constraints.min_top1 == 0.9 and stored.cpu == spec.cpu  # kept
    # A mask resets a field to zero where leaving it out would keep it.
    cleared = common_pb2.HardwareProfile(name=spec.name)
    assert not update(cleared, "constraints.min_top1").constraints.HasField("min_top1")
    assert update(cleared, "constraints.min_top1").cpu == spec.cpu
    # "*" replaces the whole profile with what is given.
    assert update(spec, "*") == spec
    for paths, words in (
        (["cpu.cores", "*"], '"*" replaces everything'),
        (["constraints.no_such_field"], "no field of a profile"),
        (["name"], "cannot change"),
    ):
        request = pb.UpdateProfileRequest(profile=spec)
        request.update_mask.paths.extend(paths)
        error = rpc_error(stub.UpdateProfile, request, OPERATOR)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and words in error.details()
    # The merged profile is checked whole: a mask cannot sneak in an invalid one.
    broken = common_pb2.HardwareProfile(name=spec.name)
    error = rpc_error(
        stub.UpdateProfile,
        pb.UpdateProfileRequest(profile=broken, update_mask={"paths": ["cpu.cores"]}),
        OPERATOR,
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "cores" in error.details()


def test_a_listing_leaves_out_latency_data_unless_asked_for_the_full_view(
    stub: RegistryServiceStub,
) -> None:
    spec = profile_to_proto(example_profile())
    spec.latency_reports.add(arch="ks=3,3|e=3,4|d=2,2|r=32", measured_ms=9.5)
    stub.CreateProfile(pb.CreateProfileRequest(profile=spec), metadata=OPERATOR, timeout=10)

    def listed(view: int) -> common_pb2.HardwareProfile:
        request = pb.ListProfilesRequest(view=view)  # type: ignore[arg-type]
        return stub.ListProfiles(request, metadata=OPERATOR, timeout=10).profiles[0].spec

    def got(view: int) -> common_pb2.HardwareProfile:
        request = pb.GetProfileRequest(name=f"profiles/{spec.name}", view=view)  # type: ignore[arg-type]
        return stub.GetProfile(request, metadata=OPERATOR, timeout=10).profile.spec

    assert not listed(pb.PROFILE_VIEW_UNSPECIFIED).latency_reports
    assert listed(pb.PROFILE_VIEW_BASIC).cpu == spec.cpu  # the rest is there
    assert listed(pb.PROFILE_VIEW_FULL) == got(pb.PROFILE_VIEW_UNSPECIFIED) == spec
    assert not got(pb.PROFILE_VIEW_BASIC).latency_reports
    error = rpc_error(stub.ListProfiles, pb.ListProfilesRequest(view=7), OPERATOR)  # type: ignore[arg-type]
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "no profile view" in error.details()


def test_deletes_and_pins_apply_only_at_the_expected_revision(stub: RegistryServiceStub) -> None:
    fleet = Fleet(stub)
    device = fleet.devices[0].device
    cases = [
        (stub.DeleteDevice, pb.DeleteDeviceRequest(name=device.name, expected_revision=9)),
        (stub.DeleteFleet, pb.DeleteFleetRequest(name="fleets/pis", expected_revision=9)),
        (
            stub.DeleteProfile,
            pb.DeleteProfileRequest(name="profiles/raspberry-pi-4", expected_revision=9),
        ),
    ]
    for call, request in cases:
        error = rpc_error(call, request, OPERATOR)
        assert error.code() is grpc.StatusCode.ABORTED
        details = decode_details(error.trailing_metadata())
        assert details is not None and details.reason == "REVISION_MISMATCH"
        assert details.facts["expected_revision"] == "9"
    stub.DeleteDevice(
        pb.DeleteDeviceRequest(name=device.name, expected_revision=device.revision),
        metadata=OPERATOR,
    )
    error = rpc_error(stub.GetDevice, pb.GetDeviceRequest(name=device.name), OPERATOR)
    assert error.code() is grpc.StatusCode.NOT_FOUND


def test_update_bumps_revision_and_detects_conflicts(stub: RegistryServiceStub) -> None:
    spec = profile_to_proto(example_profile())
    stub.CreateProfile(pb.CreateProfileRequest(profile=spec), metadata=OPERATOR)
    spec.constraints.latency_budget.FromMilliseconds(3)
    updated = stub.UpdateProfile(
        pb.UpdateProfileRequest(profile=spec, expected_revision=1), metadata=OPERATOR
    ).profile
    assert (updated.revision, budget_ms(updated.spec.constraints)) == (2, 3.0)
    error = rpc_error(
        stub.UpdateProfile, pb.UpdateProfileRequest(profile=spec, expected_revision=1), OPERATOR
    )
    assert error.code() is grpc.StatusCode.ABORTED
    # What a program needs to act on it, beside the words (google.rpc ErrorInfo).
    assert decode_details(error.trailing_metadata()) == ErrorDetails(
        "REVISION_MISMATCH", {"current_revision": "2", "expected_revision": "1"}
    )


def test_errors_carry_their_reason_and_facts(stub: RegistryServiceStub) -> None:
    fleet = Fleet(stub)
    in_use = rpc_error(
        stub.DeleteProfile, pb.DeleteProfileRequest(name="profiles/raspberry-pi-4"), OPERATOR
    )
    assert in_use.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert decode_details(in_use.trailing_metadata()) == ErrorDetails(
        "PROFILE_IN_USE", {"fleets": "pis"}
    )
    busy = rpc_error(stub.DeleteFleet, pb.DeleteFleetRequest(name="fleets/pis"), OPERATOR)
    assert decode_details(busy.trailing_metadata()) == ErrorDetails(
        "FLEET_HAS_DEVICES", {"devices": str(len(fleet.devices))}
    )
    # Every other error a client causes has an ErrorInfo too: its status code's name.
    missing = rpc_error(stub.GetFleet, pb.GetFleetRequest(name="fleets/nope"), OPERATOR)
    assert missing.code() is grpc.StatusCode.NOT_FOUND
    assert decode_details(missing.trailing_metadata()) == ErrorDetails("NOT_FOUND")
    # A bad field is named in a BadRequest, and a precondition in a PreconditionFailure.
    bad = rpc_error(stub.GetFleet, pb.GetFleetRequest(name="fleets/No Such"), OPERATOR)
    assert decode_details(bad.trailing_metadata()) == ErrorDetails(
        "INVALID_ARGUMENT", field_path="name"
    )
    status = status_pb2.Status.FromString(dict(in_use.trailing_metadata())[DETAILS_KEY])
    failure = error_details_pb2.PreconditionFailure()
    assert any(d.Unpack(failure) for d in status.details if d.Is(failure.DESCRIPTOR))
    assert failure.violations[0].type == "PROFILE_IN_USE"
    assert "used by fleet" in failure.violations[0].description


def test_update_fleet_changes_its_rollout_and_is_a_change(stub: RegistryServiceStub) -> None:
    fleet = Fleet(stub)
    after = stub.WatchChanges(pb.WatchChangesRequest(after_cursor=0), metadata=OPERATOR)
    seen = [next(after).cursor for _ in range(4)]  # profile, fleet, two devices
    pinned = pb.RolloutPolicy(pinned=pb.PinnedRollout(model_sha256=SHA))
    updated = stub.UpdateFleet(
        pb.UpdateFleetRequest(
            fleet=pb.Fleet(name="fleets/pis", rollout=pinned), expected_revision=1
        ),
        metadata=OPERATOR,
    ).fleet
    assert updated.revision == 2 and updated.rollout == pinned
    change = next(after)
    after.cancel()
    assert (change.cursor, change.kind, change.operation) == (
        seen[-1] + 1,
        pb.CHANGE_KIND_FLEET,
        pb.CHANGE_OPERATION_UPDATED,
    )
    assert (change.id, change.parent, change.revision) == ("pis", "raspberry-pi-4", 2)
    got = stub.GetFleet(pb.GetFleetRequest(name="fleets/pis"), metadata=OPERATOR).fleet
    assert got.rollout.pinned.model_sha256 == SHA
    stale = pb.UpdateFleetRequest(
        fleet=pb.Fleet(name="fleets/pis"),
        update_mask=FieldMask(paths=["rollout"]),
        expected_revision=1,
    )
    assert rpc_error(stub.UpdateFleet, stale, OPERATOR).code() is grpc.StatusCode.ABORTED
    bad = pb.UpdateFleetRequest(
        fleet=pb.Fleet(
            name="fleets/pis",
            rollout=pb.RolloutPolicy(
                staged=pb.StagedRollout(canary_percent=0, min_success_reports=1),
            ),
        )
    )
    error = rpc_error(stub.UpdateFleet, bad, OPERATOR)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "canary_percent" in error.details()
    missing = pb.UpdateFleetRequest(fleet=pb.Fleet(name="fleets/nope", rollout=pinned))
    assert rpc_error(stub.UpdateFleet, missing, OPERATOR).code() is grpc.StatusCode.NOT_FOUND
    device = bearer(fleet.devices[0].device_token)
    denied = rpc_error(
        stub.UpdateFleet, pb.UpdateFleetRequest(fleet=pb.Fleet(name="fleets/pis")), device
    )
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    enrolment = rpc_error(
        stub.UpdateFleet,
        pb.UpdateFleetRequest(fleet=pb.Fleet(name="fleets/pis")),
        bearer(fleet.enrolment),
    )
    assert enrolment.code() is grpc.StatusCode.PERMISSION_DENIED


def test_a_fleet_moves_to_another_profile_but_not_while_pinned(stub: RegistryServiceStub) -> None:
    Fleet(stub)
    other = dataclasses.replace(example_profile(), name="x86-gateway")
    stub.CreateProfile(pb.CreateProfileRequest(profile=profile_to_proto(other)), metadata=OPERATOR)
    staged = stub.UpdateFleet(
        pb.UpdateFleetRequest(
            fleet=pb.Fleet(
                name="fleets/pis",
                rollout=pb.RolloutPolicy(
                    staged=pb.StagedRollout(canary_percent=10, min_success_reports=1),
                ),
            )
        ),
        metadata=OPERATOR,
    ).fleet
    # Only the profile is set, so only the profile changes: the staged policy stays.
    move = pb.UpdateFleetRequest(fleet=pb.Fleet(name="fleets/pis", profile="profiles/x86-gateway"))
    moved = stub.UpdateFleet(move, metadata=OPERATOR).fleet
    assert (moved.profile, moved.rollout, moved.revision) == (
        "profiles/x86-gateway",
        staged.rollout,
        staged.revision + 1,
    )
    assert stub.UpdateFleet(move, metadata=OPERATOR).fleet.revision == moved.revision
    nowhere = pb.UpdateFleetRequest(fleet=pb.Fleet(name="fleets/pis", profile="profiles/nowhere"))
    error = rpc_error(stub.UpdateFleet, nowhere, OPERATOR)
    assert error.code() is grpc.StatusCode.NOT_FOUND and "'nowhere'" in error.details()

    pinned = pb.RolloutPolicy(pinned=pb.PinnedRollout(model_sha256=SHA))
    stub.UpdateFleet(
        pb.UpdateFleetRequest(fleet=pb.Fleet(name="fleets/pis", rollout=pinned)), metadata=OPERATOR
    )
    back = pb.UpdateFleetRequest(
        fleet=pb.Fleet(name="fleets/pis", profile="profiles/raspberry-pi-4")
    )
    error = rpc_error(stub.UpdateFleet, back, OPERATOR)
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    details = decode_details(error.trailing_metadata())
    assert details is not None and details.reason == "FLEET_PINNED"
    assert stub.GetFleet(
        pb.GetFleetRequest(name="fleets/pis"), metadata=OPERATOR
    ).fleet.profile == ("profiles/x86-gateway")
    # Unpinned in the same update, it moves; "*" replaces both fields.
    both = pb.UpdateFleetRequest(
        fleet=pb.Fleet(name="fleets/pis", profile="profiles/raspberry-pi-4"),
        update_mask=FieldMask(paths=["*"]),
    )
    after = stub.UpdateFleet(both, metadata=OPERATOR).fleet
    assert after.profile == "profiles/raspberry-pi-4"
    assert after.rollout.HasField("auto_latest")


@pytest.mark.parametrize(
    ("mask", "words"),
    [
        (None, "changes nothing"),
        (["revision"], "cannot be updated"),
        (["rollout.strategy"], "replaced whole"),
        (["*", "profile"], "give it alone"),
        ([], "names no field"),
    ],
)
def test_a_fleet_update_that_names_no_settable_field_is_refused(
    stub: RegistryServiceStub, mask: list[str] | None, words: str
) -> None:
    Fleet(stub)
    request = pb.UpdateFleetRequest(fleet=pb.Fleet(name="fleets/pis", revision=9))
    if mask is not None:
        request.update_mask.CopyFrom(FieldMask(paths=mask))
    error = rpc_error(stub.UpdateFleet, request, OPERATOR)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and words in error.details()


def test_watch_streams_changes_and_resumes_from_a_cursor(
    stub: RegistryServiceStub, registry: RegistryServerThread
) -> None:
    received: queue.Queue[pb.WatchChangesResponse] = queue.Queue()
    stream = stub.WatchChanges(pb.WatchChangesRequest(after_cursor=0), metadata=OPERATOR)

    def read() -> None:
        try:
            for change in stream:
                received.put(change)
        except grpc.RpcError:  # cancelled below
            pass

    threading.Thread(target=read, daemon=True).start()
    fleet = Fleet(stub)  # profile, fleet, two devices: four changes
    device = fleet.devices[0].device
    stub.Heartbeat(
        pb.HeartbeatRequest(name=device.name), metadata=bearer(fleet.devices[0].device_token)
    )
    stub.DeleteDevice(pb.DeleteDeviceRequest(name=device.name), metadata=OPERATOR)
    changes = [received.get(timeout=10) for _ in range(5)]
    stream.cancel()
    assert [c.cursor for c in changes] == [1, 2, 3, 4, 5]
    assert [c.kind for c in changes] == [
        pb.CHANGE_KIND_PROFILE,
        pb.CHANGE_KIND_FLEET,
        pb.CHANGE_KIND_DEVICE,
        pb.CHANGE_KIND_DEVICE,
        pb.CHANGE_KIND_DEVICE,
    ]
    assert changes[-1].operation == pb.CHANGE_OPERATION_DELETED and changes[-1].id == device.id
    assert received.empty()  # the heartbeat was not a change
    resumed = stub.WatchChanges(pb.WatchChangesRequest(after_cursor=3), metadata=OPERATOR)
    assert [next(resumed).cursor, next(resumed).cursor] == [4, 5]
    resumed.cancel()
    ahead = stub.WatchChanges(pb.WatchChangesRequest(after_cursor=99), metadata=OPERATOR)
    with pytest.raises(grpc.RpcError) as caught:
        next(ahead)
    assert caught.value.code() is grpc.StatusCode.OUT_OF_RANGE


def test_a_watch_shows_only_the_kinds_asked_for(stub: RegistryServiceStub) -> None:
    fleet = Fleet(stub)  # profile, fleet, two devices
    only = pb.WatchChangesRequest(kinds=[pb.CHANGE_KIND_FLEET, pb.CHANGE_KIND_PROFILE])
    watch = stub.WatchChanges(only, metadata=OPERATOR)
    assert [next(watch).cursor, next(watch).cursor] == [1, 2]
    device = fleet.devices[0].device
    stub.DeleteDevice(pb.DeleteDeviceRequest(name=device.name), metadata=OPERATOR)
    spec = profile_to_proto(example_profile())
    spec.constraints.latency_budget.FromMilliseconds(7)
    stub.UpdateProfile(pb.UpdateProfileRequest(profile=spec), metadata=OPERATOR)
    after = next(watch)  # the device deletion (cursor 5) was passed over
    assert (after.cursor, after.kind) == (6, pb.CHANGE_KIND_PROFILE)
    watch.cancel()
    for kinds, words in (
        ([pb.CHANGE_KIND_DEVICE, pb.CHANGE_KIND_DEVICE], "more than once"),
        ([pb.CHANGE_KIND_UNSPECIFIED], "no change kind"),
        ([42], "no change kind"),
    ):
        bad = stub.WatchChanges(pb.WatchChangesRequest(kinds=kinds), metadata=OPERATOR)
        with pytest.raises(grpc.RpcError) as caught:
            next(bad)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert words in caught.value.details()


def test_a_watch_behind_the_retention_is_told_its_cursor_expired(
    stub: RegistryServiceStub, registry: RegistryServerThread
) -> None:
    Fleet(stub)  # four changes
    assert registry.store is not None
    oldest = registry.store.changes_after(0)
    registry.store.prune_changes(oldest[1].committed_us + 1)  # as the retention would
    for after in (1, 2, 3):
        watch = stub.WatchChanges(pb.WatchChangesRequest(after_cursor=after), metadata=OPERATOR)
        if after == 1:  # change 2 is gone
            with pytest.raises(grpc.RpcError) as caught:
                next(watch)
            assert caught.value.code() is grpc.StatusCode.OUT_OF_RANGE
            details = decode_details(caught.value.trailing_metadata())
            assert details is not None and details.reason == "CURSOR_EXPIRED"
            assert details.facts == {"oldest_cursor": "3", "head_cursor": "4"}
            assert "watch from cursor 4" in caught.value.details()
        else:  # nothing it needs was pruned
            assert next(watch).cursor == after + 1
            watch.cancel()
    from_start = stub.WatchChanges(pb.WatchChangesRequest(after_cursor=0), metadata=OPERATOR)
    assert next(from_start).cursor == 3  # 0: whatever is held, never expired
    from_start.cancel()


def test_stopping_the_server_ends_watch_streams(registry: RegistryServerThread) -> None:
    with registry.channel() as channel:
        stub = RegistryServiceStub(channel)
        stream = stub.WatchChanges(pb.WatchChangesRequest(), metadata=OPERATOR, timeout=60)
        received: queue.Queue[pb.WatchChangesResponse] = queue.Queue()
        ended = threading.Event()

        def drain() -> None:
            with contextlib.suppress(grpc.RpcError):
                for change in stream:
                    received.put(change)
            ended.set()

        threading.Thread(target=drain, daemon=True).start()
        # A change that arrives shows the stream is open on the server: stopping then
        # ends a live stream, not one still being set up.
        spec = profile_to_proto(example_profile())
        stub.CreateProfile(pb.CreateProfileRequest(profile=spec), metadata=OPERATOR, timeout=10)
        assert received.get(timeout=20).kind == pb.CHANGE_KIND_PROFILE
        registry.stop_serving()
        assert ended.wait(timeout=20)


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert SERVICE in services and "grpc.health.v1.Health" in services


def test_unexpected_errors_are_internal_without_details(
    stub: RegistryServiceStub, registry: RegistryServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("secret internals")

    assert registry.store is not None
    monkeypatch.setattr(registry.store, "list_fleets", broken)
    error = rpc_error(stub.ListFleets, pb.ListFleetsRequest(), OPERATOR)
    assert error.code() is grpc.StatusCode.INTERNAL
    assert "incident" in error.details() and "secret" not in error.details()


def test_tokens_never_reach_the_logs(
    stub: RegistryServiceStub, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        fleet = Fleet(stub)
        device = fleet.devices[0]
        stub.Heartbeat(
            pb.HeartbeatRequest(name=device.device.name), metadata=bearer(device.device_token)
        )
        rpc_error(stub.ListFleets, pb.ListFleetsRequest(), bearer(device.device_token))
    text = "\n".join(str(vars(record)) for record in caplog.records)
    assert "RegistryService/Heartbeat" in text  # the calls were logged...
    for secret in (OPERATOR_TOKEN, fleet.enrolment, device.device_token):
        assert secret not in text  # ...without their tokens


def test_a_devices_successful_calls_are_logged_at_debug_every_other_call_at_info(
    stub: RegistryServiceStub, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = Fleet(stub)
    device = fleet.devices[0]
    with caplog.at_level(logging.DEBUG, logger="ofa_fleet.access"):
        stub.Heartbeat(
            pb.HeartbeatRequest(name=device.device.name), metadata=bearer(device.device_token)
        )
        rpc_error(stub.ListFleets, pb.ListFleetsRequest(), bearer(device.device_token))
        stub.ListFleets(pb.ListFleetsRequest(), metadata=OPERATOR)
    calls = [
        (r.method.rsplit("/", 1)[-1], r.code, r.levelno)
        for r in caplog.records
        if r.name == "ofa_fleet.access" and r.getMessage() == "call"
    ]
    assert calls == [
        ("Heartbeat", "OK", logging.DEBUG),  # the fleet's routine: thousands a minute
        ("ListFleets", "PERMISSION_DENIED", logging.INFO),  # a device's failure
        ("ListFleets", "OK", logging.INFO),  # an operator's call: the audit trail
    ]


def test_huge_or_deep_values_get_a_short_clear_error(stub: RegistryServiceStub) -> None:
    spec = profile_to_proto(example_profile())
    spec.runtime.execution_provider = "x" * 100_000
    error = rpc_error(stub.CreateProfile, pb.CreateProfileRequest(profile=spec), OPERATOR)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "execution_provider" in error.details() and len(error.details()) <= 2000
    spec = profile_to_proto(example_profile())
    spec.latency_table_json = "[" * 100_000
    error = rpc_error(stub.CreateProfile, pb.CreateProfileRequest(profile=spec), OPERATOR)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "latency_table_json" in error.details()
    spec.latency_table_json = " " * (1024 * 1024 + 1)  # valid JSON needs no more than this
    error = rpc_error(stub.CreateProfile, pb.CreateProfileRequest(profile=spec), OPERATOR)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "latency_table_json is 1,048,577 characters; at most 1,048,576" in error.details()


def test_who_am_i_names_the_device_its_token_belongs_to(stub: RegistryServiceStub) -> None:
    fleet = Fleet(stub)
    for enrolled in fleet.devices:
        answer = stub.WhoAmI(pb.WhoAmIRequest(), metadata=bearer(enrolled.device_token), timeout=10)
        assert answer.device.id == enrolled.device.id and answer.device.fleet == "pis"
    error = rpc_error(stub.WhoAmI, pb.WhoAmIRequest(), OPERATOR)
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    error = rpc_error(stub.WhoAmI, pb.WhoAmIRequest(), bearer("ofa_device_forged"))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
