"""Resource names (AIP-122): how the API names what it holds.

A profile is ``profiles/{profile}``, its model of some bytes
``profiles/{profile}/models/{sha256}``, a fleet ``fleets/{fleet}`` (both ids DNS labels),
and a device ``fleets/{fleet}/devices/{device}``: the fleet it enrolled in (it never
moves to another) and the id the registry assigned. Requests name resources this way; a
name of another form is the caller's mistake (INVALID_ARGUMENT, naming the field), and
one of the right form that names nothing is NOT_FOUND. Inside a service records are
keyed by their ids; names exist at the API's edge.
"""

from __future__ import annotations

from dataclasses import dataclass

from ofa_fleet.contract.fields import DEVICE_ID_PATTERN, NAME_PATTERN
from ofa_fleet.errors import InvalidArgumentError

PROFILES = "profiles"
FLEETS = "fleets"
DEVICES = "devices"
# A listing's parent for every fleet's devices, or every profile's models (AIP-159).
ANY_FLEET = "-"
ANY = ANY_FLEET
MAX_NAME_CHARS = 160


@dataclass(frozen=True)
class DeviceName:
    fleet: str
    device: str

    def __str__(self) -> str:
        return device_name(self.fleet, self.device)


def device_name(fleet: str, device: str) -> str:
    return f"{FLEETS}/{fleet}/{DEVICES}/{device}"


def fleet_name(fleet: str) -> str:
    return f"{FLEETS}/{fleet}"


def profile_name(profile: str) -> str:
    return f"{PROFILES}/{profile}"


def model_name(profile: str, sha256: str) -> str:
    """One profile's model of these bytes: ``profiles/{profile}/models/{sha256}``."""
    return f"{PROFILES}/{profile}/models/{sha256}"


def parse_profile_name(name: str, field: str = "name") -> str:
    """The profile id in ``profiles/{profile}``; INVALID_ARGUMENT for another form."""
    return _parse_top(name, PROFILES, field, "a profile's name, profiles/PROFILE")


def parse_fleet_name(name: str, field: str = "name") -> str:
    """The fleet id in ``fleets/{fleet}``; INVALID_ARGUMENT for another form."""
    return _parse_top(name, FLEETS, field, "a fleet's name, fleets/FLEET")


def parse_profile_parent(parent: str, field: str = "parent") -> str | None:
    """The profile a listing's parent names (profiles/{profile}), or None for
    profiles/-."""
    if parent == f"{PROFILES}/{ANY}":
        return None
    return _parse_top(parent, PROFILES, field, "profiles/PROFILE, or profiles/- for every profile")


def _parse_top(name: str, collection: str, field: str, form: str) -> str:
    head, _, rest = name.partition("/")
    if head == collection and NAME_PATTERN.fullmatch(rest):
        return rest
    raise InvalidArgumentError(
        f"{field} must be {form}, the id 1-63 lower-case letters, digits and '-', "
        f"starting and ending with a letter or digit; got {name[:MAX_NAME_CHARS]!r}",
        field=field,
    )


def parse_device_name(name: str, field: str = "name") -> DeviceName:
    """The fleet and device a device's name holds; INVALID_ARGUMENT when it holds none."""
    parts = name.split("/")
    if (
        len(name) > MAX_NAME_CHARS
        or len(parts) != 4
        or parts[0] != FLEETS
        or parts[2] != DEVICES
        or not NAME_PATTERN.fullmatch(parts[1])
        or not DEVICE_ID_PATTERN.fullmatch(parts[3])
    ):
        raise InvalidArgumentError(
            f"{field} must be a device's name, fleets/FLEET/devices/d- and 20 hex digits "
            f"(as enrolment and every listing return it); got {name[:MAX_NAME_CHARS]!r}",
            field=field,
        )
    return DeviceName(parts[1], parts[3])


def parse_fleet_parent(parent: str, field: str = "parent") -> str | None:
    """The fleet a listing's parent names (fleets/{fleet}), or None for fleets/-."""
    parts = parent.split("/")
    if (
        len(parts) == 2
        and parts[0] == FLEETS
        and (parts[1] == ANY_FLEET or NAME_PATTERN.fullmatch(parts[1]))
    ):
        return None if parts[1] == ANY_FLEET else parts[1]
    raise InvalidArgumentError(
        f"{field} must be fleets/FLEET, or fleets/- for every fleet; "
        f"got {parent[:MAX_NAME_CHARS]!r}",
        field=field,
    )
