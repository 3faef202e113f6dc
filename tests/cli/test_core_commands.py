"""The `ofa-fleet` command end to end, as a user runs it: real processes, real files."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from ofa_fleet.core.checkpoint import load_checkpoint
from ofa_fleet.core.export import read_metadata
from tests.cli_runner import ofa_fleet

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("arch", ["max", "min", "random"])
def test_eval_prints_one_json_object(checkpoint, arch):
    result = ofa_fleet("eval", "--checkpoint", str(checkpoint), "--arch", arch, "--json")
    data = json.loads(result.stdout)
    assert set(data) == {"device", "arch", "top1", "macs", "params"}
    assert data["device"] == "cpu" or data["device"].startswith("cuda")
    assert 0.0 <= data["top1"] <= 1.0
    again = ofa_fleet("eval", "--checkpoint", str(checkpoint), "--arch", data["arch"], "--json")
    assert json.loads(again.stdout) == data  # the canonical string is accepted back


@pytest.mark.parametrize("arch", ["max", "min", "random"])
def test_export_writes_a_verified_model(checkpoint, tmp_path, arch):
    out = tmp_path / f"{arch}.onnx"
    result = ofa_fleet(
        "export", "--checkpoint", str(checkpoint), "--arch", arch, "--out", str(out), "--json"
    )
    data = json.loads(result.stdout)
    blob = out.read_bytes()
    assert data["sha256"] == hashlib.sha256(blob).hexdigest()
    assert data["bytes"] == len(blob)
    onnx.checker.check_model(onnx.load_from_string(blob), full_check=True)
    meta = read_metadata(blob)
    assert meta["arch"] == data["arch"]
    r = int(data["arch"].split("_")[0][1:])
    assert meta["input_shape"] == f"[1, 1, {r}, {r}]"
    assert meta["supernet_version"] == load_checkpoint(checkpoint).version
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": np.zeros((2, 1, r, r), np.float32)})[0]
    assert logits.shape == (2, 10)


def test_resume_of_finished_checkpoint_changes_nothing(checkpoint):
    version = load_checkpoint(checkpoint).version
    result = ofa_fleet("train", "--out", str(checkpoint), "--resume", "--json")
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 4
    assert summary["supernet_version"] == version
    assert load_checkpoint(checkpoint).version == version


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["eval", "--checkpoint", "/nonexistent.ckpt"], "does not exist"),
        (["train", "--data", "/no/such/dir", "--out", "/tmp/x.ckpt", "--force"], "/no/such/dir"),
        (["eval", "--checkpoint", "CKPT", "--arch", "r32-k3e3"], "cannot parse arch"),
        (["eval", "--checkpoint", "CKPT", "--arch", "bogus"], "max, min, random"),
        (
            [
                "eval",
                "--checkpoint",
                "CKPT",
                "--arch",
                "r30_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3",
            ],
            "allowed: [24, 28, 32]",
        ),
        (["train", "--out", "CKPT"], "exists; pass --resume"),
        (
            ["train", "--out", "CKPT", "--resume", "--epochs-per-phase", "2,1,0,0"],
            "was started with --epochs-per-phase [1, 1, 1, 1]",
        ),
        (["train", "--out", "/tmp/x.ckpt", "--epochs-per-phase", "0,1,1,1"], "epochs per phase"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_errors_are_one_line_without_traceback(checkpoint, args, fragment):
    args = [str(checkpoint) if a == "CKPT" else a for a in args]
    result = ofa_fleet(*args, check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr
