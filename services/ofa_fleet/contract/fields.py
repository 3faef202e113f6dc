"""Checks for the registry's own fields (names, labels, digests); pages are in `storage.pages`.

Each failure names the field, says what was wrong and what is allowed. Strings are also
kept free of control characters: PostgreSQL refuses NUL in text, and a log line or a
terminal should never be steered by a device's label.
"""

from __future__ import annotations

import math
import re

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.errors import InvalidArgumentError

NAME_PATTERN = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
DEVICE_ID_PATTERN = re.compile(r"d-[0-9a-f]{20}")
REQUEST_ID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def check_name(value: str, field: str) -> str:
    """A DNS label: what profiles and fleets are called (and Kubernetes objects may be)."""
    if not value:
        raise InvalidArgumentError(f"{field} is required", field=field)
    if not NAME_PATTERN.fullmatch(value):
        raise InvalidArgumentError(
            f"{field} {_shown(value)} is not a valid name: use 1-63 lower-case letters, "
            "digits and '-', starting and ending with a letter or digit",
            field=field,
        )
    return value


def check_device_id(value: str, field: str = "device_id") -> str:
    if not value:
        raise InvalidArgumentError(f"{field} is required", field=field)
    if not DEVICE_ID_PATTERN.fullmatch(value):
        raise InvalidArgumentError(
            f"{field} {_shown(value)} is not a device id (the registry issues ids like "
            "'d-' followed by 20 hex digits)",
            field=field,
        )
    return value


def check_request_id(value: str, field: str = "request_id") -> str:
    """Empty, or a UUID in its canonical lower-case form (AIP-155): what makes a retried
    write recognisable as the same write."""
    if value and not REQUEST_ID_PATTERN.fullmatch(value):
        raise InvalidArgumentError(
            f"{field} {_shown(value)} is not a UUID: use 36 characters like "
            "'123e4567-e89b-42d3-a456-426614174000' (lower-case), or leave it empty",
            field=field,
        )
    return value


# Far above any one boot's profiling; it keeps a device's running total finite.
MAX_COST_FIGURE = 1e9


def check_cost(cost: EnergyCost, field: str) -> EnergyCost:
    """CPU seconds, joules and grams: each finite, not negative, under `MAX_COST_FIGURE`.

    A device adds its report to a running total; one NaN or negative figure would corrupt
    that total for good, so it is refused rather than stored.
    """
    for name, value in (
        ("cpu_seconds", cost.cpu_seconds),
        ("energy_joules", cost.joules),
        ("co2e_grams", cost.co2e_grams),
    ):
        if not (math.isfinite(value) and 0.0 <= value < MAX_COST_FIGURE):
            raise InvalidArgumentError(
                f"{field}.{name} must be a finite number from 0 to {MAX_COST_FIGURE:g}, "
                f"got {value!r}",
                field=f"{field}.{name}",
            )
    return cost


def check_within(value: float, low: float, high: float, must: str) -> float:
    """`value` when finite and within low..high; else INVALID_ARGUMENT: "`must`, got ..."."""
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidArgumentError(f"{must}, got {value!r}")
    return value


def check_text(value: str, field: str, max_length: int) -> str:
    """Free text: printable, at most `max_length` characters; may be empty."""
    if len(value) > max_length:
        raise InvalidArgumentError(
            f"{field} is {len(value)} characters long; at most {max_length} are allowed",
            field=field,
        )
    for char in value:
        if not char.isprintable():
            raise InvalidArgumentError(
                f"{field} contains the control character U+{ord(char):04X}; "
                "only printable characters are allowed",
                field=field,
            )
    return value


def check_sha256(value: str, field: str, required: bool) -> str:
    if not value and not required:
        return value
    if not SHA256_PATTERN.fullmatch(value):
        raise InvalidArgumentError(
            f"{field} {_shown(value)} is not a sha256 digest: 64 lower-case hex digits",
            field=field,
        )
    return value


def _shown(value: str) -> str:
    """The value for an error message: quoted, escaped and cut short."""
    return repr(value if len(value) <= 80 else value[:77] + "...")
