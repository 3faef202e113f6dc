"""MIT's supernet all the way to devices: imported, fine-tuned on a folder of a user's own
classes, then served by `ofa-fleet demo` to devices of a profile whose budget ImageNet-size
subnets (160-224 px) can meet. The bundled profiles' budgets are the small space's, which
no such subnet meets (delivery says so and waits), hence a profile of its own here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import load_checkpoint
from ofa_fleet.core.ofa_import import import_ofa_mobilenet_v3, save_imported
from tests.cli_runner import ofa_fleet
from tests.core.ofa_reference import reference_network
from tests.stack.test_demo import demo_json
from tests.training.test_streaming import write_folder

pytestmark = [pytest.mark.slow, pytest.mark.integration]

PROFILE = """\
name: camera-gateway
cpu:
  architecture: x86_64
  cores: 4
  clock_ghz: 2.9
  peak_gflops: 185.6
  memory_bandwidth_gbps: 15.0
ram_bytes: 2GiB
storage_bytes: 1GiB
runtime:
  engine: onnxruntime
  execution_provider: CPUExecutionProvider
  threads: 2
constraints:
  latency_budget_ms: 40.0
  batch_size: 1
  max_model_bytes: 32MiB
  max_peak_memory_bytes: 64MiB
"""


def test_an_imported_fine_tuned_supernet_serves_devices(tmp_path: Path) -> None:
    state = reference_network(1.0, seed=0).state_dict()
    source = tmp_path / "ofa_mbv3_d234_e346_k357_w1.0"
    torch.save(state, source)
    imported = tmp_path / "imported.ckpt"
    save_imported(import_ofa_mobilenet_v3(state), imported, source, "0" * 64)
    data = write_folder(tmp_path / "mine", {"train": 4, "val": 2}, 2, 96)
    tuned = tmp_path / "mine.ckpt"
    ofa_fleet(
        *("train", "--init", str(imported), "--data", str(data), "--out", str(tuned)),
        *("--batch-size", "4", "--epochs-per-phase", "1,1,0,0", "--device", "cpu"),
    )
    ofa_fleet(
        *("predictor", "fit", "--checkpoint", str(tuned), "--samples", "12"),
        *("--out", f"{tuned}.predictor"),
    )
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "camera-gateway.yaml").write_text(PROFILE)

    result = demo_json(
        tmp_path / "demo", tuned, "--profiles", str(profiles), "--devices", "2",
        "--deadline-seconds", "400",
    )  # fmt: skip

    assert result["errors"] == {}, json.dumps(result["errors"])
    assert result["served"] == result["verified"] == 2
    (row,) = result["profiles"]
    checkpoint = load_checkpoint(tuned)
    arch = ArchConfig.parse(row["arch"], checkpoint.space)
    assert 160 <= arch.resolution <= 224 and row["supernet_version"] == checkpoint.version
    assert row["within_budget"] and row["measured_latency_ms"] > 0
