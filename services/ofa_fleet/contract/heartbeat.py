"""How often devices heartbeat: the registry's to set, within bounds both sides enforce.

The registry names the interval in every answer to a device (RegisterDevice, Heartbeat,
ReportStatus), so an operator can slow a large fleet down, or speed up liveness, without
touching a device. A device clamps what it is told to the same bounds: a registry that
asked for a heartbeat every microsecond (a bug, or a hostile server) cannot make it spin.
"""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration

from ofa_fleet.contract.fields import check_within

DEFAULT_HEARTBEAT_SECONDS = 30.0
MIN_HEARTBEAT_SECONDS = 0.1
MAX_HEARTBEAT_SECONDS = 86_400.0  # a day


def check_heartbeat_seconds(seconds: float) -> float:
    """A registry's setting, refused outside the bounds with what they are."""
    return check_within(
        seconds,
        MIN_HEARTBEAT_SECONDS,
        MAX_HEARTBEAT_SECONDS,
        f"heartbeat interval must be {MIN_HEARTBEAT_SECONDS:g} to "
        f"{MAX_HEARTBEAT_SECONDS:g} seconds",
    )


def interval_to_proto(seconds: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration


def interval_from_proto(duration: Duration) -> float | None:
    """The interval a device follows: None when the answer named none (zero), else clamped."""
    seconds = duration.ToNanoseconds() / 1e9
    if seconds <= 0:
        return None
    return min(MAX_HEARTBEAT_SECONDS, max(MIN_HEARTBEAT_SECONDS, seconds))
