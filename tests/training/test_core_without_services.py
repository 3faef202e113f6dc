"""The single-GPU path from the source tree: `python -m ofa_fleet.cli.core_main` trains,
evaluates and exports where only torch, onnx and onnxruntime (and their own needs) are
installed; none of Ray, gRPC, databases, scikit-learn or the metrics client.

The interpreter runs without its site packages (``-S``) over a copy of this environment's
packages with those left out, so importing any of them fails as it would on such a machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.training.test_streaming import SMALL_SPACE, write_folder

pytestmark = pytest.mark.slow

SERVICES = Path(__file__).resolve().parents[2] / "services"
ABSENT = (
    "ray",
    "grpc",
    "grpc_health",
    "grpc_reflection",
    "grpc_tools",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "psycopg_binary",
    "prometheus_client",
    "sklearn",
    "scipy",
    "cryptography",
    "pandas",
    "pyarrow",
    "yaml",
)


@pytest.fixture(scope="module")
def bare_site(tmp_path_factory) -> Path:
    """This environment's site-packages without the server-side packages (symlinks)."""
    site = Path(sysconfig.get_paths()["purelib"])
    bare = tmp_path_factory.mktemp("bare-site")
    for entry in site.iterdir():
        top = entry.name.split("-")[0].split(".")[0].lower()
        if top in ABSENT or entry.suffix == ".pth" or entry.name.startswith("__editable__"):
            continue
        (bare / entry.name).symlink_to(entry)
    return bare


def core(bare_site: Path, cwd: Path, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-S", "-m", "ofa_fleet.cli.core_main", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": f"{SERVICES}{os.pathsep}{bare_site}",
            "OMP_NUM_THREADS": "1",
        },
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_core_trains_evaluates_and_exports_without_the_services(bare_site, tmp_path):
    check = subprocess.run(
        [sys.executable, "-S", "-c", "import ray"],
        capture_output=True,
        env={"PYTHONPATH": str(bare_site)},
    )
    assert check.returncode != 0  # the environment really lacks them
    data = write_folder(tmp_path / "data", {"train": 20, "val": 6}, 3, 20)
    space = tmp_path / "space.json"
    space.write_text(SMALL_SPACE.to_json())
    ckpt = tmp_path / "supernet.ckpt"
    trained = core(
        bare_site,
        tmp_path,
        *("train", "--data", str(data), "--out", str(ckpt), "--space", str(space)),
        *("--image-size", "16", "--epochs-per-phase", "1", "--device", "auto"),
    )
    assert trained["epochs"] == 4
    assert trained["device"] == "cpu" or trained["device"].startswith("cuda")
    scored = core(bare_site, tmp_path, "eval", "--checkpoint", str(ckpt), "--arch", "min")
    assert 0.0 <= scored["top1"] <= 1.0
    exported = core(
        bare_site, tmp_path, "export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.onnx")
    )
    assert exported["bytes"] == (tmp_path / "m.onnx").stat().st_size > 0
