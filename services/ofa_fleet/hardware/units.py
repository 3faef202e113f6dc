"""Byte sizes as operators write them: ``536870912``, ``"512MiB"``, ``"64 MB"``."""

from __future__ import annotations

import re

from ofa_fleet.errors import InvalidArgumentError

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_bytes(value: object, field: str) -> int:
    """A positive byte count from an int or a string with a unit (KB, MiB, ...)."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{field} must be a byte count, got {value!r}")
    if isinstance(value, int):
        count = value
    elif isinstance(value, str) and (match := _SIZE_RE.match(value)):
        unit = match.group(2).lower()
        if unit not in _UNITS:
            raise InvalidArgumentError(
                f"{field}: unknown unit {match.group(2)!r} in {value!r}; "
                "use B, KB, MB, GB, KiB, MiB or GiB"
            )
        count = int(float(match.group(1)) * _UNITS[unit])
    else:
        raise InvalidArgumentError(
            f"{field} must be a byte count such as 1048576 or '1MiB', got {value!r}"
        )
    if count <= 0:
        raise InvalidArgumentError(f"{field} must be positive, got {value!r}")
    return count
