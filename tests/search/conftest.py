"""A local Ray (two CPUs) and a warm specializer, started once per session.

Ray's token authentication is turned off for this loopback-only test cluster. The
specializer fits its accuracy predictor on 24 measured subnets of the session's digits
supernet: enough for the mechanics under test, a fraction of a real fit's cost.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.hardware.profile_file import load_profile

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "profiles"
FIT_SAMPLES = 24


def example_profile(name: str = "raspberry-pi-4") -> HardwareProfile:
    return load_profile(PROFILES / f"{name}.yaml")


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from ofa_fleet.search.ray_runtime import start_ray, stop_ray

    start_ray(num_cpus=2)
    yield
    stop_ray()


@pytest.fixture(scope="session")
def search_checkpoint(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session supernet, so its fitted predictor lands in a folder of its own."""
    path = tmp_path_factory.mktemp("search") / "supernet.ckpt"
    shutil.copy(checkpoint, path)
    return path


@pytest.fixture(scope="session")
def specializer(ray_local: None, search_checkpoint: Path):
    from ofa_fleet.search.service import load_specializer

    return load_specializer(search_checkpoint, fit_samples=FIT_SAMPLES)
