"""Resource names (AIP-122): how the API names what it holds.

A device is ``fleets/{fleet}/devices/{device}``: the fleet it enrolled in (it never moves
to another) and the id the registry assigned. Requests name resources this way; a name
of another form is the caller's mistake (INVALID_ARGUMENT, naming the field), and one of
the right form that names nothing is NOT_FOUND.
"""

from __future__ import annotations

from dataclasses import dataclass

from ofa_fleet.contract.fields import DEVICE_ID_PATTERN, NAME_PATTERN
from ofa_fleet.errors import InvalidArgumentError

FLEETS = "fleets"
DEVICES = "devices"
# ListDevices' parent for every fleet's devices (AIP-159).
ANY_FLEET = "-"
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
