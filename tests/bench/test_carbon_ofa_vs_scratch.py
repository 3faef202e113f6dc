"""bench/carbon_ofa_vs_scratch.py: the K-profile ledger's arithmetic, the two disjoint test
splits, and a whole run on a tiny CIFAR-like archive set written here (random JPEGs: the
figures mean nothing, their shape and sums do)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.data import ImageDataset, load_dataset

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import carbon_ofa_vs_scratch as bench  # noqa: E402

from tests.bench.cifar_archives import write_archives  # noqa: E402


def test_ledger_adds_k_specializations_to_the_fixed_cost_and_finds_break_even() -> None:
    fixed = EnergyCost(100.0, 1000.0, 10.0)
    per_profile = EnergyCost(1.0, 10.0, 0.1)
    per_network = EnergyCost(50.0, 500.0, 5.0)
    result = bench.ledger(fixed, per_profile, per_network, [1, 5, 20])
    assert [row["k"] for row in result["rows"]] == [1, 5, 20]
    k20 = result["rows"][2]
    assert k20["ofa"]["joules"] == pytest.approx(1200.0)
    assert k20["scratch"]["joules"] == pytest.approx(10_000.0)
    assert k20["scratch"]["co2e_grams"] == pytest.approx(100.0)
    assert k20["ratio"] == pytest.approx(10_000.0 / 1200.0)
    assert result["rows"][0]["ratio"] == pytest.approx(500.0 / 1010.0)
    assert result["break_even_k"] == pytest.approx(1000.0 / 490.0)


def test_no_break_even_when_scratch_is_not_dearer_per_network() -> None:
    cost = EnergyCost(1.0, 10.0, 0.1)
    assert bench.ledger(EnergyCost(1.0, 10.0, 0.1), cost, cost, [1])["break_even_k"] is None


def test_search_and_report_splits_are_disjoint_subsets_of_the_test_images() -> None:
    digits = load_dataset("digits", image_size=8)
    count = 100
    images = torch.zeros(count, 1, 8, 8, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(count, dtype=torch.uint8)  # each image says who it is
    held = ImageDataset(images, torch.zeros(count, dtype=torch.int64), digits.train.classes)
    data = bench.split_test(dataclasses.replace(digits, val=held), 30, seed=0)
    search = set(data.splits.val.images[:, 0, 0, 0].tolist())
    report = set(data.report.images[:, 0, 0, 0].tolist())
    assert len(search) == len(report) == 30 and not search & report
    halves = bench.split_test(dataclasses.replace(digits, val=held), 0, seed=0)
    assert len(halves.splits.val) == len(halves.report) == 50


def test_without_the_dataset_it_says_so_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--cifar-dir", str(tmp_path)]) == 0
    assert "skipped: CIFAR-10 archives not found" in capsys.readouterr().out


@pytest.mark.slow
def test_a_tiny_run_prints_the_table_and_its_json_adds_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cifar = tmp_path / "cifar"
    cifar.mkdir()
    write_archives(cifar, classes=3, train=24, test=14)
    out = tmp_path / "carbon.json"
    args = [
        "--cifar-dir", str(cifar), "--cache-dir", str(tmp_path / "cache"),
        "--train-images", "64", "--test-images", "20", "--epochs", "1,0,0,0",
        "--predictor-samples", "10", "--predictor-target", "100",
        "--budget-fractions", "0.3,0.9", "--population", "4", "--generations", "1",
        "--top-k", "1", "--scratch-archs", "1", "--scratch-max-epochs", "1",
        "--ks", "1,5,20", "--json-out", str(out),
    ]  # fmt: skip
    assert bench.main(args) == 0
    printed = capsys.readouterr().out
    assert "once-for-all vs from scratch" in printed and "break-even K" in printed
    assert "extrapolated" in printed
    result = json.loads(out.read_text())
    assert result["train_images"] == 64
    assert result["search_test_images"] == result["report_test_images"] == 20
    assert result["supernet"]["cost"]["cpu_seconds"] > 0 and not result["supernet"]["reused"]
    predictor = result["predictor"]
    assert predictor["samples_measured"] == 10
    assert predictor["cost"]["joules"] == pytest.approx(
        100 * predictor["per_sample_cost"]["joules"] + predictor["fit_cost"]["joules"]
    )
    assert [s["latency_budget_ms"] for s in result["specializations"]] == sorted(
        s["latency_budget_ms"] for s in result["specializations"]
    )
    for spec in result["specializations"]:
        assert spec["predicted_latency_ms"] <= spec["latency_budget_ms"]
        assert spec["onnx_bytes"] > 0 and 0.0 <= spec["report_top1"] <= 1.0
        assert spec["cost"]["cpu_seconds"] == pytest.approx(
            sum(spec[f"{step}_cost"]["cpu_seconds"] for step in ("search", "rerank", "export"))
        )
    (scratch,) = result["scratch"]
    assert scratch["arch"] == result["specializations"][0]["arch"]
    assert scratch["epochs"] == 1 and scratch["target_top1"] == pytest.approx(
        result["specializations"][0]["report_top1"]
    )
    fixed = result["supernet"]["cost"]["joules"] + predictor["cost"]["joules"]
    assert result["fixed_cost"]["joules"] == pytest.approx(fixed)
    per_profile = result["per_profile_cost"]["joules"]
    per_network = result["per_network_cost"]["joules"]
    for row in result["ledger"]["rows"]:
        assert row["ofa"]["joules"] == pytest.approx(fixed + row["k"] * per_profile)
        assert row["scratch"]["joules"] == pytest.approx(row["k"] * per_network)
