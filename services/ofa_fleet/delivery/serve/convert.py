"""Delivery's records as the protobuf messages its servicer answers with.

The servicer decides what to answer; this says how each record is spelled on the wire, so
that a field is converted once (as `registry.convert` and `search.convert` do for theirs).
"""

from __future__ import annotations

from collections.abc import Sequence

from ofa_fleet.contract.resource_names import model_name
from ofa_fleet.delivery.rollout import Rollout, RolloutState
from ofa_fleet.delivery.store.model_store import HistoryEntry, ModelRecord
from ofa_fleet.delivery.store.specializations import SpecializationStatus
from ofa_fleet.serving.timestamps import timestamp
from ofa_fleet.v1 import delivery_pb2


def manifest_to_proto(
    record: ModelRecord, key_id: str, chunk_size: int, urls: Sequence[str] = ()
) -> delivery_pb2.ModelManifest:
    m = record.manifest
    return delivery_pb2.ModelManifest(
        name=model_name(m.profile_name, m.sha256),
        canonical_manifest=record.manifest_bytes,
        signature=record.signature,
        key_id=key_id,
        sha256=m.sha256,
        size_bytes=m.size_bytes,
        arch=m.arch,
        profile_name=m.profile_name,
        profile_revision=m.profile_revision,
        supernet_version=m.supernet_version,
        create_time=timestamp(m.created_us),
        chunk_size=chunk_size,
        download_urls=urls,
    )


def history_entry_to_proto(entry: HistoryEntry) -> delivery_pb2.ModelHistoryEntry:
    return delivery_pb2.ModelHistoryEntry(
        sha256=entry.sha256,
        reason=reason_to_proto(entry.reason),
        change_time=timestamp(entry.at_us),
    )


def state_to_proto(state: SpecializationStatus) -> delivery_pb2.SpecializationState:
    return STATES[state]


STATES = {
    SpecializationStatus.CURRENT: delivery_pb2.SPECIALIZATION_STATE_CURRENT,
    SpecializationStatus.PENDING: delivery_pb2.SPECIALIZATION_STATE_PENDING,
    SpecializationStatus.FAILING: delivery_pb2.SPECIALIZATION_STATE_FAILING,
    SpecializationStatus.INFEASIBLE: delivery_pb2.SPECIALIZATION_STATE_INFEASIBLE,
}
REASONS = {
    "missing": delivery_pb2.MODEL_CHANGE_REASON_MISSING,
    "new-supernet": delivery_pb2.MODEL_CHANGE_REASON_NEW_SUPERNET,
    "profile-changed": delivery_pb2.MODEL_CHANGE_REASON_PROFILE_CHANGED,
    "over-budget": delivery_pb2.MODEL_CHANGE_REASON_OVER_BUDGET,
    "operator": delivery_pb2.MODEL_CHANGE_REASON_OPERATOR,
}


ROLLOUT_STATES = {
    RolloutState.CANARY: delivery_pb2.ROLLOUT_STATE_CANARY,
    RolloutState.PROMOTED: delivery_pb2.ROLLOUT_STATE_PROMOTED,
    RolloutState.ROLLED_BACK: delivery_pb2.ROLLOUT_STATE_ROLLED_BACK,
}


def rollout_to_proto(rollout: Rollout) -> delivery_pb2.FleetRollout:
    return delivery_pb2.FleetRollout(
        fleet_name=rollout.fleet_name,
        state=ROLLOUT_STATES.get(rollout.state, delivery_pb2.ROLLOUT_STATE_UNSPECIFIED),
        from_sha256=rollout.from_sha256,
        to_sha256=rollout.to_sha256,
        canary_devices=len(rollout.canaries),
        successful_canaries=rollout.successes,
        failed_canaries=rollout.failures,
        needed_successes=rollout.needed_successes,
        start_time=timestamp(rollout.started_us),
        update_time=timestamp(rollout.updated_us),
    )


def reason_to_proto(text: str) -> delivery_pb2.ModelChangeReason:
    return REASONS.get(text, delivery_pb2.MODEL_CHANGE_REASON_UNSPECIFIED)
