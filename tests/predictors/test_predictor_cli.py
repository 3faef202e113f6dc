"""`profile-device`, `predictor fit` and `predict` as a user runs them, on a real supernet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ofa_fleet.hardware.latency_table import LatencyTable
from ofa_fleet.predictors.accuracy import AccuracyPredictor
from tests.cli_runner import ofa_fleet
from tests.conftest import made_once

pytestmark = pytest.mark.slow

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "profiles"
FIELDS = {
    "arch",
    "latency_ms",
    "latency_source",
    "top1",
    "model_bytes",
    "peak_memory_bytes",
    "macs",
}


@pytest.fixture(scope="module")
def predictor(checkpoint, tmp_path_factory) -> Path:
    """Fitted once for every worker that runs this module's tests."""
    with made_once(tmp_path_factory, "predictor-cli") as folder:
        out = folder / "digits.pred"
        if out.exists():
            return out
        result = ofa_fleet(
            *("predictor", "fit", "--checkpoint", str(checkpoint), "--samples", "12"),
            *("--out", str(out), "--json"),
        )
    summary = json.loads(result.stdout)
    assert summary["samples"] == summary["newly_measured"] == 12
    assert summary["holdout_samples"] >= 2
    assert summary["sample_cpu_seconds"] > 0
    return out


def predict(*args: str) -> dict:
    return json.loads(ofa_fleet("predict", *args, "--json").stdout)


def test_predict_with_the_machines_own_table(checkpoint, lut, predictor):
    large = predict("--checkpoint", str(checkpoint), "--lut", str(lut), "--arch", "max",
                    "--predictor", str(predictor))  # fmt: skip
    small = predict("--checkpoint", str(checkpoint), "--lut", str(lut), "--arch", "min",
                    "--predictor", str(predictor))  # fmt: skip
    assert set(large) >= FIELDS
    assert large["latency_source"] == "lut"
    assert 0 < small["latency_ms"] < large["latency_ms"]
    assert small["model_bytes"] < large["model_bytes"]
    assert small["macs"] < large["macs"]
    assert 0.0 <= small["top1"] <= 1.0


@pytest.mark.parametrize("name", ["raspberry-pi-3", "raspberry-pi-4", "x86-gateway"])
def test_predict_for_each_example_profile(checkpoint, name):
    result = predict("--checkpoint", str(checkpoint), "--profile", str(PROFILES / f"{name}.yaml"))
    assert result["latency_source"] == "analytic"
    assert result["profile"] == name
    # A top-1 exactly when a predictor was found (search may have left one beside the
    # shared checkpoint).
    assert (result["top1"] is None) == (result["predictor"] is None)
    assert isinstance(result["over_limits"], list)


def test_predict_uses_the_predictor_beside_the_checkpoint_and_names_broken_limits(
    checkpoint, predictor, tmp_path
):
    own = tmp_path / "supernet.ckpt"
    own.write_bytes(checkpoint.read_bytes())
    (tmp_path / "supernet.ckpt.predictor").write_bytes(predictor.read_bytes())
    data = yaml.safe_load((PROFILES / "raspberry-pi-4.yaml").read_text())
    data["constraints"]["max_model_bytes"] = 1000
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(data))
    result = predict("--checkpoint", str(own), "--profile", str(tmp_path / "tiny.yaml"))
    assert result["predictor"] == str(tmp_path / "supernet.ckpt.predictor")
    assert 0.0 <= result["top1"] <= 1.0
    assert result["over_limits"] == [
        f"model size {result['model_bytes']:,} bytes over the limit 1,000 bytes"
    ]


def test_reports_in_a_profile_calibrate(checkpoint, tmp_path):
    data = yaml.safe_load((PROFILES / "raspberry-pi-4.yaml").read_text())
    base = predict(
        "--checkpoint", str(checkpoint), "--profile", str(PROFILES / "raspberry-pi-4.yaml")
    )
    data["latency_reports"] = [{"arch": base["arch"], "measured_ms": 3 * base["latency_ms"]}]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    result = predict("--checkpoint", str(checkpoint), "--profile", str(tmp_path / "p.yaml"))
    assert result["latency_source"] == "calibrated"
    assert result["latency_ms"] == pytest.approx(3 * base["latency_ms"], rel=0.05)


def test_a_table_for_another_space_is_refused(checkpoint, lut, tmp_path):
    table = LatencyTable.from_dict(json.loads(lut.read_text()))
    other = {**table.to_dict(), "space_fingerprint": "ffffffffffffffff"}
    (tmp_path / "other.json").write_text(json.dumps(other))
    result = ofa_fleet(
        "predict", "--checkpoint", str(checkpoint), "--lut", str(tmp_path / "other.json"),
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: latency table was measured for search space ffff")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        ({"constraints": {"latency_budget_ms": 0}}, "latency_budget_ms must be positive"),
        ({"runtime": {"execution_provider": "GPU"}}, "not a known onnxruntime execution provider"),
    ],
)
def test_bad_profiles_are_one_line_errors(checkpoint, tmp_path, edit, fragment):
    data = yaml.safe_load((PROFILES / "x86-gateway.yaml").read_text())
    for section, values in edit.items():
        data[section] = {**data[section], **values}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    result = ofa_fleet(
        "predict", "--checkpoint", str(checkpoint), "--profile", str(tmp_path / "bad.yaml"),
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_predictor_of_another_supernet_is_refused(checkpoint, predictor, tmp_path):
    other = AccuracyPredictor.load(predictor)
    other.supernet_version = "0123456789abcdef"
    other.save(tmp_path / "other.pred")
    result = ofa_fleet(
        "predict", "--checkpoint", str(checkpoint), "--profile", str(PROFILES / "x86-gateway.yaml"),
        "--predictor", str(tmp_path / "other.pred"), check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "fitted for supernet 0123456789abcdef" in result.stderr


def test_missing_table_file_is_named(checkpoint):
    result = ofa_fleet(
        "predict", "--checkpoint", str(checkpoint), "--lut", "/nonexistent/lut.json", check=False
    )
    assert result.returncode == 2
    assert "/nonexistent/lut.json does not exist" in result.stderr


def test_asking_for_more_samples_measures_only_the_new_ones(checkpoint, predictor, tmp_path):
    out = tmp_path / "more.pred"
    out.write_bytes(predictor.read_bytes())
    result = ofa_fleet(
        *("predictor", "fit", "--checkpoint", str(checkpoint), "--samples", "14"),
        *("--out", str(out), "--json"),
    )
    summary = json.loads(result.stdout)
    assert summary["newly_measured"] == 2
    assert summary["samples"] == 14
    earlier = {s.arch: s.top1 for s in AccuracyPredictor.load(predictor).samples}
    now = {s.arch: s.top1 for s in AccuracyPredictor.load(out).samples}
    assert {arch: now[arch] for arch in earlier} == earlier
