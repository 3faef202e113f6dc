"""Shared fixtures, and how the suite spreads over processes.

Tests run torch on one thread: with two, a second busy process on a two-core machine
makes OpenMP's threads wait on each other and small ops slow down fifty-fold (measured),
turning a loaded CI machine into a timeout. One thread keeps the suite's time stable.

`make test` runs the suite on several pytest-xdist workers, test by test in collection
order (`--dist loadgroup --no-loadscope-reorder`, with no groups). The tests that need
the session's Ray are sorted first, so every worker's first test needs Ray and starts it
before any gRPC thread exists (see `ray_before_grpc`); the digits supernet and its
latency table are made once for all workers (`made_once`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from tests.cli_runner import ofa_fleet

# The package first: its gRPC fork setting (see ofa_fleet/__init__.py) must be in place
# before any test starts gRPC.
importlib.import_module("ofa_fleet")

torch.set_num_threads(1)

# The CLI's contexts (cli/contexts.py) come from the user's own config file: the tests,
# and every command they start, read none unless a test names one.
os.environ["OFA_FLEET_CONFIG"] = str(Path(os.devnull).parent / "nonexistent-ofa-fleet-config.yaml")
os.environ.pop("OFA_FLEET_CONTEXT", None)


def needs_ray(item: pytest.Item) -> bool:
    return "ray_local" in getattr(item, "fixturenames", ())


def needs_checkpoint(item: pytest.Item) -> bool:
    return "checkpoint" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Ray's tests first, ordered so that no worker waits while another trains the
    session supernet; the rest in collection order.

    xdist hands out tests in this order, two to each worker to begin with (the first and
    third to one, the second and fourth to the other), then one more to whichever finishes.
    So the first and third need the supernet (their worker trains it, about a minute,
    then fits the search's predictor), the second and fourth do not (Ray Train's tests,
    which share a module fixture, so they belong to one worker), and every later test
    finds the supernet made.
    """
    with_supernet = [i for i in items if needs_ray(i) and needs_checkpoint(i)]
    without = [i for i in items if needs_ray(i) and not needs_checkpoint(i)]
    rest = [i for i in items if not needs_ray(i)]
    head = [t for pair in zip(with_supernet[:2], without[:2], strict=False) for t in pair]
    tail = [*with_supernet, *without]
    items[:] = [*head, *(t for t in tail if t not in head), *rest]


@contextlib.contextmanager
def made_once(factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A folder every xdist worker of this run shares, held by one worker at a time: the
    first to hold it makes what goes in it, the others find it made."""
    base = factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = root / f"shared-{name}"
    with FileLock(str(folder) + ".lock"):
        folder.mkdir(exist_ok=True)
        yield folder


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small digits supernet, trained once per run for every test that needs one."""
    with made_once(tmp_path_factory, "supernet") as folder:
        path = folder / "supernet.ckpt"
        if not path.exists():
            result = ofa_fleet(
                *("train", "--data", "digits", "--out", str(path)),
                *("--epochs-per-phase", "1", "--json"),
            )
            summary = json.loads(result.stdout)
            assert summary["epochs"] == 4
            assert len(summary["supernet_version"]) == 16
    return path


@pytest.fixture(scope="session")
def lut(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This machine's latency table for the session supernet's space (a quick profile)."""
    with made_once(tmp_path_factory, "lut") as folder:
        out = folder / "lut.json"
        if not out.exists():
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


_first_test: list[pytest.Item] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if not _first_test:
        _first_test.append(item)


@pytest.fixture(scope="session", autouse=True)
def ray_before_grpc(request: pytest.FixtureRequest) -> None:
    """Start the session's Ray before any test opens a gRPC channel or server, in the one
    process that runs Ray's tests.

    Ray spawns its raylet and workers with fork, running Python in the child before exec;
    a fork while gRPC's threads hold a lock can leave that child hung, and the head node
    then times out ("the raylet failed to startup"). Started first, no gRPC thread exists.
    Ray's tests are sorted first and xdist hands tests out in that order, so a process
    whose first test needs no Ray is given none of them later.
    """
    if _first_test and needs_ray(_first_test[0]):
        request.getfixturevalue("ray_local")


@pytest.fixture(scope="session")
def search_checkpoint(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session supernet, so its fitted predictor lands in a folder of its own
    (one for all workers: the first specializer fits it, the others load it)."""
    with made_once(tmp_path_factory, "search") as folder:
        path = folder / "supernet.ckpt"
        if not path.exists():
            shutil.copy(checkpoint, folder / "copying")
            (folder / "copying").rename(path)
    return path


@pytest.fixture(scope="session")
def specializer(ray_local: None, search_checkpoint: Path, tmp_path_factory):
    from ofa_fleet.search.service import load_specializer

    with made_once(tmp_path_factory, "search"):
        return load_specializer(search_checkpoint, fit_samples=FIT_SAMPLES)
