"""The token cache: what it keeps, for how long, and what drops an entry at once."""

from __future__ import annotations

from ofa_fleet.contract.heartbeat import DEFAULT_HEARTBEAT_SECONDS
from ofa_fleet.serving.access import Principal, Role
from ofa_fleet.serving.token_cache import TTL_SECONDS, TokenCache


def test_an_entry_outlives_several_default_heartbeat_intervals() -> None:
    # Were it shorter than the interval, every heartbeat would find its token expired and
    # cost the registry a database lookup (and delivery a registry call on reconnection).
    assert TTL_SECONDS >= 4 * DEFAULT_HEARTBEAT_SECONDS
    cache = TokenCache()
    cache.put("ofa_device_token-a", Principal(Role.DEVICE, "fleets/f/devices/a"))
    assert cache.get("ofa_device_token-a") == Principal(Role.DEVICE, "fleets/f/devices/a")


def test_deleting_a_device_or_its_fleet_drops_its_tokens_at_once() -> None:
    cache = TokenCache()
    cache.put("ofa_device_token-a", Principal(Role.DEVICE, "fleets/f/devices/a"))
    cache.put("ofa_device_token-b", Principal(Role.DEVICE, "fleets/f/devices/b"))
    cache.put("ofa_enrol_token-f", Principal(Role.ENROLMENT, "f"))
    cache.forget("fleets/f/devices/a")
    assert cache.get("ofa_device_token-a") is None
    assert cache.get("ofa_device_token-b") is not None
    cache.forget("f")
    assert cache.get("ofa_enrol_token-f") is None
    cache.clear()
    assert cache.get("ofa_device_token-b") is None
