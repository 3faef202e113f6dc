"""Protobuf messages to the registry's plain values and back; nothing else.

Incoming messages are turned into the same dictionaries profile files hold, so one
validator (`HardwareProfile.from_dict`) judges a profile however it arrived.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from ofa_fleet.carbon.convert import cost_from_proto, cost_to_proto
from ofa_fleet.contract.resource_names import device_name, fleet_name, profile_name
from ofa_fleet.contract.rollout import rollout_to_proto
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.registry.records import (
    Change,
    ChangeKind,
    ChangeOperation,
    DeviceRecord,
    DeviceStatus,
    FleetRecord,
    ProfileRecord,
)
from ofa_fleet.serving.timestamps import timestamp
from ofa_fleet.v1 import registry_pb2

E = TypeVar("E", bound=enum.Enum)
_KINDS = {
    ChangeKind.PROFILE: registry_pb2.CHANGE_KIND_PROFILE,
    ChangeKind.FLEET: registry_pb2.CHANGE_KIND_FLEET,
    ChangeKind.DEVICE: registry_pb2.CHANGE_KIND_DEVICE,
}
_OPERATIONS = {
    ChangeOperation.CREATED: registry_pb2.CHANGE_OPERATION_CREATED,
    ChangeOperation.UPDATED: registry_pb2.CHANGE_OPERATION_UPDATED,
    ChangeOperation.DELETED: registry_pb2.CHANGE_OPERATION_DELETED,
}


def profile_record_to_proto(record: ProfileRecord) -> registry_pb2.Profile:
    return registry_pb2.Profile(
        name=profile_name(record.spec.name),
        spec=profile_to_proto(record.spec),
        revision=record.revision,
        create_time=timestamp(record.created_us),
        update_time=timestamp(record.updated_us),
    )


def fleet_to_proto(record: FleetRecord) -> registry_pb2.Fleet:
    return registry_pb2.Fleet(
        name=fleet_name(record.name),
        profile=profile_name(record.profile),
        rollout=rollout_to_proto(record.rollout),
        revision=record.revision,
        create_time=timestamp(record.created_us),
        update_time=timestamp(record.updated_us),
    )


def status_from_proto(message: registry_pb2.StatusReport) -> DeviceStatus:
    return DeviceStatus(
        model_sha256=message.model_sha256,
        measured_latency_ms=message.measured_latency_ms,
        onnxruntime_version=message.onnxruntime_version,
        errors=tuple(message.errors),
        profiling_cost=cost_from_proto(message.profiling_cost)
        if message.HasField("profiling_cost")
        else None,
    )


def device_to_proto(record: DeviceRecord) -> registry_pb2.Device:
    message = registry_pb2.Device(
        name=device_name(record.fleet, record.id),
        id=record.id,
        fleet=record.fleet,
        hardware_id=record.hardware_id,
        create_time=timestamp(record.created_us),
        revision=record.revision,
        profiling_cost_total=cost_to_proto(record.profiling_cost_total),
    )
    if record.last_seen_us is not None:
        message.last_seen_time.CopyFrom(timestamp(record.last_seen_us))
    if record.status is not None:
        message.status.CopyFrom(
            registry_pb2.DeviceStatus(
                model_sha256=record.status.model_sha256,
                measured_latency_ms=record.status.measured_latency_ms,
                onnxruntime_version=record.status.onnxruntime_version,
                errors=record.status.errors,
                report_time=timestamp(record.status.reported_us),
            )
        )
    return message


def change_to_proto(change: Change) -> registry_pb2.WatchChangesResponse:
    return registry_pb2.WatchChangesResponse(
        cursor=change.cursor,
        kind=_KINDS[change.kind],
        operation=_OPERATIONS[change.operation],
        id=change.entity_id,
        revision=change.revision,
        commit_time=timestamp(change.committed_us),
        parent=change.parent,
        name=_change_name(change),
    )


def _change_name(change: Change) -> str:
    if change.kind is ChangeKind.PROFILE:
        return profile_name(change.entity_id)
    if change.kind is ChangeKind.FLEET:
        return fleet_name(change.entity_id)
    return device_name(change.parent, change.entity_id)


def kinds_from_proto(kinds: Sequence[int]) -> frozenset[ChangeKind]:
    """A watch's kind filter: each a known kind, at most once."""
    return _chosen(kinds, _KINDS, "kinds", "change kind")


def operations_from_proto(operations: Sequence[int]) -> frozenset[ChangeOperation]:
    """A watch's operation filter: each a known operation, at most once."""
    return _chosen(operations, _OPERATIONS, "operations", "change operation")


def _chosen(numbers: Sequence[int], known: Mapping[E, Any], field: str, what: str) -> frozenset[E]:
    by_number: dict[int, E] = {number: value for value, number in known.items()}
    chosen: set[E] = set()
    for number in numbers:
        value = by_number.get(number)
        if value is None:
            raise InvalidArgumentError(f"{field} holds {number}, which is no {what}")
        if value in chosen:
            raise InvalidArgumentError(f"{field} names {value.value} more than once")
        chosen.add(value)
    return frozenset(chosen)


def apply_view(profile: registry_pb2.Profile, view: int, default: int) -> None:
    """Leave out what `view` does not show (AIP-157); UNSPECIFIED means `default`."""
    if view not in registry_pb2.ProfileView.values():
        raise InvalidArgumentError(f"view {view} is no profile view; use BASIC or FULL")
    if (view or default) == registry_pb2.PROFILE_VIEW_BASIC:
        profile.spec.ClearField("latency_table_json")
        profile.spec.ClearField("latency_reports")
