"""Shared fixtures.

Tests run torch on one thread: with two, a second busy process on a two-core machine
makes OpenMP's threads wait on each other and small ops slow down fifty-fold (measured),
turning a loaded CI machine into a timeout. One thread keeps the suite's time stable.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.cli_runner import ofa_fleet

# The package first: its gRPC fork setting (see ofa_fleet/__init__.py) must be in place
# before any test starts gRPC.
importlib.import_module("ofa_fleet")

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """One small digits supernet, trained once per session for every test that needs one."""
    path = tmp_path_factory.mktemp("supernet") / "supernet.ckpt"
    result = ofa_fleet(
        "train", "--data", "digits", "--out", str(path), "--epochs-per-phase", "1", "--json"
    )
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 4
    assert len(summary["supernet_version"]) == 16
    return path


@pytest.fixture(scope="session")
def lut(checkpoint, tmp_path_factory) -> Path:
    """This machine's latency table for the session supernet's space (a quick profile)."""
    out = tmp_path_factory.mktemp("lut") / "lut.json"
    result = ofa_fleet(
        *("profile-device", "--checkpoint", str(checkpoint), "--out", str(out)),
        *("--rounds", "2", "--whole-models", "4", "--json"),
    )
    summary = json.loads(result.stdout)
    assert summary["layers"] == len(json.loads(out.read_text())["layers"]) > 100
    assert summary["threads"] == 1
    return out


# A local Ray (two CPUs) and a warm specializer, started once per session for the search
# and delivery tests. Ray's token authentication is off for this loopback-only cluster.
# The specializer fits its accuracy predictor on 24 measured subnets of the session's
# digits supernet: enough for the mechanics under test, a fraction of a real fit's cost.
FIT_SAMPLES = 24


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from ofa_fleet.search.ray_runtime import start_ray, stop_ray

    start_ray(num_cpus=2)
    yield
    stop_ray()


@pytest.fixture(scope="session", autouse=True)
def ray_before_grpc(request: pytest.FixtureRequest) -> None:
    """Start the session's Ray before any test opens a gRPC channel or server, if any
    collected test will need it.

    Ray spawns its raylet and workers with fork, running Python in the child before exec;
    a fork while gRPC's threads hold a lock can leave that child hung, and the head node
    then times out ("the raylet failed to startup"). Started first, no gRPC thread exists.
    """
    if any("ray_local" in item.fixturenames for item in request.session.items):
        request.getfixturevalue("ray_local")


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
