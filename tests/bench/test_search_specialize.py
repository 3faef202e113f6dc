"""bench/search_specialize.py end to end on the session's digits supernet: sections 1
(every example profile specialized, then answered from the cache) and 3 (the evolution as
a Ray task against in process, and concurrent profiles), small. The figures mean nothing
on a loaded test machine; their shape does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import load_checkpoint
from tests.cli_runner import ofa_fleet

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "search_specialize.py"


def test_a_small_run_specializes_every_profile_and_measures_scaling(
    checkpoint: Path, tmp_path: Path
) -> None:
    # A copy with a small predictor beside it: search would otherwise fit one of 100.
    supernet = tmp_path / "supernet.ckpt"
    shutil.copy(checkpoint, supernet)
    ofa_fleet(
        *("predictor", "fit", "--checkpoint", str(supernet), "--samples", "12"),
        *("--out", f"{supernet}.predictor"),
    )
    result = subprocess.run(
        [
            *(sys.executable, str(SCRIPT), "--checkpoint", str(supernet)),
            *("--skip-peer", "--skip-quality", "--scale-repeats", "1", "--concurrent", "2"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    space = load_checkpoint(supernet).space
    profiles = sorted(p.stem for p in (ROOT / "deploy" / "profiles").glob("*.yaml"))
    rows = report["end_to_end"]["rows"]
    assert sorted(row["profile"] for row in rows) == profiles == sorted(report["profiles"])
    for row in rows:
        ArchConfig.parse(row["arch"], space)
        assert row["predicted_latency_ms"] <= row["budget_ms"]
        assert row["seconds"] > 0 and row["cached_hit"]
        assert 0.0 <= row["measured_top1"] <= 1.0
    # The same best arch both ways is checked by the script itself (it exits otherwise).
    seconds = report["scaling"]["evolution"]["seconds_per_evolution"]
    assert set(seconds) == {"in-process", "ray task"}
    assert all(value > 0 for value in seconds.values())
    assert len(report["scaling"]["concurrency"]["profiles"]) == 2
