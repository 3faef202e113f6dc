"""The device's install: `pip install ofa-fleet` without the [server] extra, into a fresh
virtual environment (on Python 3.10 where this machine has one), installs none of the
servers' libraries, and its `ofa-fleet device run` boots against a real registry and
delivery on loopback."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ofa_fleet.cli.entry import SERVER_INSTALL
from tests.agent.fleet import Fleet
from tests.conftest import made_once

pytestmark = [pytest.mark.slow, pytest.mark.integration]  # installs from the package index

ROOT = Path(__file__).resolve().parents[2]
# The [server] extra's heavy distributions: none may reach a device.
SERVER_DISTRIBUTIONS = {
    "torch",
    "ray",
    "sqlalchemy",
    "scikit-learn",
    "scipy",
    "alembic",
    "psycopg",
    "matplotlib",
    "pillow",
}


def device_python() -> str:
    """The oldest Python the agent supports where this machine has one, else this one.

    A pyenv shim on PATH may name a version that is not selected (it then fails), so
    each candidate is asked for its version before it is used.
    """
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10")))
    candidates += [found] if (found := shutil.which("python3.10")) else []
    for candidate in candidates:
        probe = subprocess.run([candidate, "--version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return candidate
    return sys.executable


@pytest.fixture(scope="session")
def light_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment holding `pip install ofa-fleet` (this tree, no extras), made
    once for every worker of the run."""
    with made_once(tmp_path_factory, "light-install") as folder:
        venv = folder / "venv"
        if not (venv / "bin" / "ofa-fleet").exists():
            shutil.rmtree(venv, ignore_errors=True)  # a half-made one from a failed attempt
            subprocess.run([device_python(), "-m", "venv", str(venv)], check=True, timeout=120)
            installed = subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(ROOT)],
                capture_output=True,
                text=True,
                timeout=900,
                cwd=folder,
            )
            assert installed.returncode == 0, installed.stderr[-4000:]
    return venv


def _distributions(venv: Path) -> set[str]:
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {d["name"].lower().replace("_", "-") for d in json.loads(listed.stdout)}


def _device_ofa_fleet(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "ofa-fleet"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=venv.parent,  # not the source tree: the installed package runs
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""},
    )


def test_the_device_install_holds_none_of_the_servers_libraries(light_install: Path) -> None:
    installed = _distributions(light_install)
    assert "ofa-fleet" in installed
    assert installed & SERVER_DISTRIBUTIONS == set()


def test_the_device_install_boots_a_device(
    light_install: Path, fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    sha = fleet.publish(model_a)
    booted = _device_ofa_fleet(
        light_install,
        "device", "run",
        "--registry", fleet.registry.address,
        "--delivery", fleet.delivery_address,
        "--fleet-token", fleet.token,
        "--state", str(tmp_path / "device"),
        "--hardware-id", "light-device",
        "--once", "--json",
    )  # fmt: skip
    assert booted.returncode == 0, booted.stderr
    report = json.loads(booted.stdout)
    assert report["model_sha256"] == sha and report["latency_ms"] > 0
    assert fleet.device(report["device_id"]).status.model_sha256 == sha


def test_a_server_command_on_the_device_install_says_what_it_needs(
    light_install: Path, tmp_path: Path
) -> None:
    refused = _device_ofa_fleet(light_install, "train", "--out", str(tmp_path / "x.ckpt"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    line = refused.stderr.strip()
    assert SERVER_INSTALL in line or "needs Python 3.11 or later" in line, line
