"""UpdateFleet's field mask (AIP-134): which of a fleet's two settable fields change.

A fleet has a profile and a rollout policy; its name selects it and the rest is output
only. A rollout policy is one decision (a strategy and the settings that go with it), so
it is replaced whole, never merged field by field: merging a pinned policy into a staged
one would keep canary settings nobody asked for. Without a mask, the fields the request
sets change, so a client that sends only a profile keeps the fleet's rollout.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.field_mask_pb2 import FieldMask

from ofa_fleet.contract.resource_names import parse_profile_name
from ofa_fleet.contract.rollout import RolloutPolicy, rollout_from_proto
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.registry.profile_update import MAX_PATH_CHARS, MAX_PATHS, WHOLE
from ofa_fleet.v1 import registry_pb2

SETTABLE = ("profile", "rollout")


@dataclass(frozen=True)
class FleetChange:
    """What an update asks for: None where a field keeps its stored value."""

    profile: str | None
    rollout: RolloutPolicy | None


def requested_change(given: registry_pb2.Fleet, mask: FieldMask | None) -> FleetChange:
    """The change `given` and `mask` ask for; INVALID_ARGUMENT for a mask that names
    anything but the settable fields, or for an update that changes nothing."""
    paths = _implied(given) if mask is None else _checked(mask)
    if WHOLE in paths:
        paths = list(SETTABLE)
    if not paths:
        raise InvalidArgumentError(
            "the update changes nothing: set fleet.profile or fleet.rollout", field="fleet"
        )
    return FleetChange(
        profile=parse_profile_name(given.profile, "fleet.profile") if "profile" in paths else None,
        rollout=rollout_from_proto(given.rollout) if "rollout" in paths else None,
    )


def _implied(given: registry_pb2.Fleet) -> list[str]:
    return [field.name for field, _ in given.ListFields() if field.name in SETTABLE]


def _checked(mask: FieldMask) -> list[str]:
    paths = list(mask.paths)
    if not paths:
        raise InvalidArgumentError(
            'update_mask names no field; name "profile", "rollout", or "*" for both',
            field="update_mask",
        )
    if len(paths) > MAX_PATHS:
        raise InvalidArgumentError(
            f"update_mask holds {len(paths)} paths; at most {MAX_PATHS}", field="update_mask"
        )
    if WHOLE in paths and len(paths) > 1:
        raise InvalidArgumentError(
            'update_mask "*" replaces everything: give it alone', field="update_mask"
        )
    for path in paths:
        if path != WHOLE and path not in SETTABLE:
            shown = path[:MAX_PATH_CHARS]
            hint = " (a rollout policy is replaced whole: name rollout)" * shown.startswith(
                "rollout."
            )
            raise InvalidArgumentError(
                f"update_mask path {shown!r} cannot be updated; a fleet's settable fields "
                f"are profile and rollout{hint}",
                field="update_mask",
            )
    return paths
