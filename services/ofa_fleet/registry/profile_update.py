"""UpdateProfile's field mask (AIP-134): which fields of the stored profile a request changes.

With a mask, exactly its paths change ("*": the whole profile). Without one, the fields
the request sets change and the rest keep their stored values, so a client built before
a field existed never clears it by leaving it out. A field reset to its zero value needs
a mask naming it. The name selects the profile and never changes.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.v1 import common_pb2

MAX_PATHS = 64
MAX_PATH_CHARS = 256
WHOLE = "*"
# Messages that are one value: a new Duration replaces the old one whole (merging its
# seconds and nanos apart would keep a stale second when the new one has none).
LEAF_MESSAGES = frozenset({"google.protobuf.Duration", "google.protobuf.Timestamp"})


def apply_update(
    stored: common_pb2.HardwareProfile,
    given: common_pb2.HardwareProfile,
    mask: FieldMask | None,
) -> common_pb2.HardwareProfile:
    """The stored profile with the fields the request changes taken from `given`."""
    paths = set_paths(given) if mask is None else _checked(mask)
    if paths == [WHOLE]:
        return given
    source = common_pb2.HardwareProfile()
    source.CopyFrom(given)
    for path in paths:  # a path into an absent message still names its field (to clear)
        message = source
        for part in path.split(".")[:-1]:
            message = getattr(message, part)
            message.SetInParent()
    merged = common_pb2.HardwareProfile()
    merged.CopyFrom(stored)
    FieldMask(paths=paths).MergeMessage(
        source, merged, replace_message_field=True, replace_repeated_field=True
    )
    return merged


def set_paths(message: Message, prefix: str = "") -> list[str]:
    """The paths of every field `message` sets, down to the leaves (the name aside)."""
    paths: list[str] = []
    for field, value in message.ListFields():
        path = prefix + field.name
        if path == "name":
            continue
        nested = (
            field.type == FieldDescriptor.TYPE_MESSAGE
            and not _is_repeated(field)
            and field.message_type is not None
            and field.message_type.full_name not in LEAF_MESSAGES
        )
        inner = set_paths(value, path + ".") if nested else []
        paths.extend(inner or [path])
    return paths


def _checked(mask: FieldMask) -> list[str]:
    paths = list(mask.paths)
    if not paths:
        raise InvalidArgumentError(
            'update_mask names no field; name the fields to change, or "*" for all'
        )
    if len(paths) > MAX_PATHS:
        raise InvalidArgumentError(f"update_mask holds {len(paths)} paths; at most {MAX_PATHS}")
    if WHOLE in paths:
        if len(paths) > 1:
            raise InvalidArgumentError('update_mask "*" replaces everything: give it alone')
        return paths
    for path in paths:
        if len(path) > MAX_PATH_CHARS or not FieldMask(paths=[path]).IsValidForDescriptor(
            common_pb2.HardwareProfile.DESCRIPTOR  # type: ignore[arg-type]  # upb's type
        ):
            raise InvalidArgumentError(
                f"update_mask path {path[:MAX_PATH_CHARS]!r} is no field of a profile "
                '(paths look like "constraints.latency_budget")'
            )
        if path == "name":
            raise InvalidArgumentError(
                "update_mask names name: the name selects the profile and cannot change"
            )
    return paths


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)
