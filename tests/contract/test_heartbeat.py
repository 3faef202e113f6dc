"""The heartbeat interval: the registry's setting is bounded, and a device clamps what it
is told to the same bounds (a registry cannot make it spin or fall silent for weeks)."""

from __future__ import annotations

import math

import pytest
from google.protobuf.duration_pb2 import Duration

from ofa_fleet.contract.heartbeat import (
    MAX_HEARTBEAT_SECONDS,
    MIN_HEARTBEAT_SECONDS,
    check_heartbeat_seconds,
    interval_from_proto,
    interval_to_proto,
)
from ofa_fleet.errors import InvalidArgumentError
from tests.cli_runner import ofa_fleet


@pytest.mark.parametrize("seconds", [0.0, -1.0, 0.05, 86_401.0, math.nan, math.inf])
def test_a_registry_setting_outside_the_bounds_is_refused(seconds: float) -> None:
    with pytest.raises(InvalidArgumentError, match=r"heartbeat interval must be 0\.1 to 86400"):
        check_heartbeat_seconds(seconds)


def test_a_device_follows_what_it_is_told_within_the_bounds() -> None:
    assert interval_from_proto(interval_to_proto(7.5)) == 7.5
    assert interval_from_proto(Duration()) is None  # an answer that names no interval
    assert interval_from_proto(Duration(nanos=1)) == MIN_HEARTBEAT_SECONDS
    assert interval_from_proto(Duration(seconds=10**9)) == MAX_HEARTBEAT_SECONDS
    assert interval_from_proto(Duration(seconds=-5)) is None


def test_serve_registry_refuses_an_interval_outside_the_bounds() -> None:
    result = ofa_fleet("serve", "registry", "--port", "0", "--heartbeat-seconds", "0", check=False)
    assert result.returncode != 0
    assert "heartbeat interval must be 0.1 to 86400 seconds, got 0.0" in result.stderr
