"""Search tests' shared values; the Ray session and the specializer are in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.hardware.profile_file import load_profile

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "profiles"


def example_profile(name: str = "raspberry-pi-4") -> HardwareProfile:
    return load_profile(PROFILES / f"{name}.yaml")
