"""bench/gpu_train.py on the CPU (``--smoke``): its sections run and report what they say;
the figures that matter come from a GPU machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_train.py"


@pytest.mark.slow
def test_the_gpu_script_runs_its_throughput_section_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    result = subprocess.run(
        [
            *(sys.executable, str(SCRIPT), "--device", "cpu", "--smoke"),
            *("--skip", "compile", "cifar", "--json-out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report == json.loads(out.read_text())
    assert report["device"] == "cpu"
    rates = report["throughput"]["images_per_s"]
    for row in ("ours largest, fp32 NCHW", "ours largest, bf16 channels-last"):
        assert rates[row] > 0
    assert rates["ours PS step (4 subnets + teacher), bf16 channels-last"] > 0
    # Without the peer installed its rows are absent and the ratio says so.
    if not report["throughput"]["peer"]["available"]:
        assert report["throughput"]["ours_over_peer_largest"] is None
    assert "compile" not in report and "cifar" not in report
