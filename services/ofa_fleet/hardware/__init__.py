"""Hardware profiles: what a kind of device can run, and the budget its model must meet."""

from __future__ import annotations

from ofa_fleet.hardware.profile import (
    Constraints,
    CpuSpec,
    HardwareProfile,
    LatencyReport,
    RuntimeSpec,
)
from ofa_fleet.hardware.profile_file import load_profile

__all__ = [
    "Constraints",
    "CpuSpec",
    "HardwareProfile",
    "LatencyReport",
    "RuntimeSpec",
    "load_profile",
]
