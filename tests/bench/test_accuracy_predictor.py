"""bench/accuracy_predictor.py end to end on a tiny CIFAR-like archive set (random JPEGs:
the figures mean nothing; their shape, the noise measurement and the cache do)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import accuracy_predictor as bench  # noqa: E402
import cifar10_ofa_vs_scratch as comparison  # noqa: E402

from tests.bench.cifar_archives import write_archives  # noqa: E402


@pytest.mark.slow
def test_a_tiny_run_measures_noise_and_cross_validates_every_predictor(tmp_path: Path) -> None:
    cifar, cache = tmp_path / "cifar", tmp_path / "cache"
    cifar.mkdir()
    write_archives(cifar, classes=3, train=24, test=14)
    common = ["--cifar-dir", str(cifar), "--cache-dir", str(cache), "--train-images", "64"]
    supernet = [*common, "--epochs", "1,1,0,0", "--front", "2", "--predictor-samples", "10"]
    assert comparison.main([*supernet, "--no-scratch", "--threads", "1"]) == 0
    (checkpoint,) = cache.glob("cifar10-64-*.ckpt")
    out = tmp_path / "predictor.json"
    args = [*common, "--checkpoint", str(checkpoint), "--samples", "12"]
    args += ["--repeat-archs", "4", "--fit-images", "20", "--fit-epochs", "20"]
    args += ["--json-out", str(out)]
    bench.main(args)
    report = json.loads(out.read_text())
    assert (report["samples"], report["test_images"], report["fit_images"]) == (12, 42, 20)
    assert -1.0 <= report["noise"]["recalibrated_tau"] <= 1.0
    assert report["noise"]["recalibrated_noise_points"] >= 0.0
    assert set(report["predictors"]) == {
        f"{name}/{target}"
        for name in ("mlp", "mlp+macs", "ensemble", "ridge")
        for target in ("whole", "share")
    }
    for row in report["predictors"].values():
        assert -1.0 <= row["tau"] <= 1.0 and row["rmse_points"] >= 0.0
    assert list(report["learning_curve"]) == ["12"]
    assert report["measure_cpu_seconds"] > 0
    # Again: every subnet's measurement comes from the cache, figures unchanged.
    bench.main(args)
    again = json.loads(out.read_text())
    assert again["measure_cpu_seconds"] == 0
    assert again["noise"] == report["noise"] and again["predictors"] == report["predictors"]
