"""`ofa-fleet demo`, the main job, end to end on built-in data."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ofa_fleet.core.export import read_metadata

pytestmark = pytest.mark.slow


def run_demo(workdir: Path) -> dict:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "ofa_fleet.cli.main", "demo", "--workdir", str(workdir)),
            *("--epochs-per-phase", "1", "--random-subnets", "1", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_demo_reuses_a_finished_supernet_and_ships_verified_subnets(checkpoint, tmp_path):
    # The session's supernet was trained by `ofa-fleet train` with the demo's own settings;
    # training it here again would add minutes and test nothing new.
    shutil.copy(checkpoint, tmp_path / "supernet.ckpt")
    first = run_demo(tmp_path)
    rows = first["subnets"]
    assert [r["subnet"] for r in rows] == ["max", "min", "random-1"]
    macs = {r["subnet"]: r["macs"] for r in rows}
    assert macs["max"] >= 5 * macs["min"]
    predicted = {r["subnet"]: r["predicted_latency_ms"] for r in rows}
    assert predicted["max"] > predicted["min"]
    for row in rows:
        blob = Path(row["file"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == row["sha256"]
        assert read_metadata(blob)["arch"] == row["arch"]
        assert read_metadata(blob)["supernet_version"] == first["supernet_version"]
        assert row["latency_ms"] > 0
        assert row["predicted_latency_ms"] > 0
        assert 0 < row["peak_memory_bytes"] < row["onnx_bytes"]
        assert row["top1"] > 0.3  # one epoch a phase: far above chance (0.1), not converged
    kept = tmp_path / "supernet.ckpt"
    stamp = kept.stat().st_mtime_ns
    table_stamp = (tmp_path / "latency-table.json").stat().st_mtime_ns
    second = run_demo(tmp_path)  # a finished checkpoint is reused, not retrained
    assert kept.stat().st_mtime_ns == stamp
    assert (tmp_path / "latency-table.json").stat().st_mtime_ns == table_stamp
    assert [r["sha256"] for r in second["subnets"]] == [r["sha256"] for r in rows]
