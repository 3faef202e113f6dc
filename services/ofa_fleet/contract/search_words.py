"""The search's closed sets on the wire (enums) and in words (manifests, logs, results).

Manifests and results say "lut", "analytic" or "calibrated", "converged" or
"generations"; the contract carries enums, so a client can switch on them and a new value
is a visible change. One mapping, both ways, by the enums' own names.
"""

from __future__ import annotations

from ofa_fleet.v1 import search_pb2


def latency_source_to_proto(source: str) -> search_pb2.LatencySource:
    return _to_proto(  # type: ignore[no-any-return]
        search_pb2.LatencySource, "LATENCY_SOURCE_", source
    )


def latency_source_from_proto(value: int) -> str:
    return _from_proto(search_pb2.LatencySource, "LATENCY_SOURCE_", value)


def stop_reason_to_proto(reason: str) -> search_pb2.StopReason:
    return _to_proto(  # type: ignore[no-any-return]
        search_pb2.StopReason, "STOP_REASON_", reason
    )


def stop_reason_from_proto(value: int) -> str:
    return _from_proto(search_pb2.StopReason, "STOP_REASON_", value)


def _to_proto(enum, prefix: str, word: str):  # type: ignore[no-untyped-def]
    """The enum value named by `word`; UNSPECIFIED for "" or a word it does not know."""
    try:
        return enum.Value(prefix + word.upper()) if word else 0
    except ValueError:
        return 0


def _from_proto(enum, prefix: str, value: int) -> str:  # type: ignore[no-untyped-def]
    """The word for `value`; "" for UNSPECIFIED or a value this build does not know."""
    if value not in enum.values() or value == 0:
        return ""
    return str(enum.Name(value)).removeprefix(prefix).lower()
