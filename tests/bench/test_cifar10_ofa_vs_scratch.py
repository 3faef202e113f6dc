"""bench/cifar10_ofa_vs_scratch.py: recipe settings from the command line, the summary's
arithmetic, and a whole run on a tiny CIFAR-like archive set (random JPEGs: the figures
mean nothing, their shape, the images each side saw and the cache do)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch

from ofa_fleet.data import load_dataset
from ofa_fleet.training.config import TrainConfig

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import cifar10_ofa_vs_scratch as bench  # noqa: E402

from tests.bench.cifar_archives import write_archives  # noqa: E402


def test_settings_are_typed_like_the_fields_they_set() -> None:
    config = bench.parse_settings(
        ["subnet_loss=mean", "phase_warmup_epochs=0.5", "lrs=0.1,0.01,0.01,0.02", "seed=3"],
        TrainConfig(),
    )
    assert config.subnet_loss == "mean" and config.phase_warmup_epochs == 0.5
    assert config.lrs == (0.1, 0.01, 0.01, 0.02) and config.seed == 3
    assert bench.recipe_tag(config, 100) != bench.recipe_tag(TrainConfig(), 100)
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        bench.parse_settings(["no_such_setting=1"], TrainConfig())


def test_the_small_setting_gives_way_to_what_is_set_explicitly() -> None:
    small = bench.parse_args(["--small", "--epochs", "6,2,2,2"])
    assert small.epochs == "6,2,2,2" and small.train_images == bench.SMALL["train_images"]
    assert bench.parse_args([]).train_images == 10_000


def test_summary_is_extracted_minus_scratch_in_points() -> None:
    rows = [
        {"subnet": "largest", "extracted_top1": 0.80, "scratch_a": {"top1": 0.78}},
        {"subnet": "smallest", "extracted_top1": 0.70, "scratch_a": {"top1": 0.72}},
        {"subnet": "front 1", "extracted_top1": 0.75, "scratch_a": {"top1": 0.755}},
    ]
    summary = bench.summarize(rows)["scratch_a"]
    assert summary["largest_points"] == pytest.approx(2.0)
    assert summary["worst_other_points"] == pytest.approx(-2.0)
    assert summary["mean_points"] == pytest.approx((2.0 - 2.0 - 0.5) / 3, abs=0.01)


@pytest.mark.slow
def test_a_tiny_run_compares_both_sides_and_reuses_what_it_trained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cifar = tmp_path / "cifar"
    cifar.mkdir()
    write_archives(cifar, classes=3, train=24, test=14)
    out = tmp_path / "bench.json"
    args = [
        "--cifar-dir", str(cifar), "--cache-dir", str(tmp_path / "cache"),
        "--train-images", "64", "--epochs", "1,1,0,0", "--set", "subnet_loss=mean",
        "--front", "2", "--predictor-samples", "10", "--converged-epochs", "2",
        "--converged-archs", "ends", "--json-out", str(out), "--threads", "1",
    ]  # fmt: skip
    assert bench.main(args) == 0
    assert "trained alone" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["train_images"] == 64 and result["test_images"] == 42
    assert result["settings"]["subnet_loss"] == "mean"
    assert result["supernet"]["full_phase_images"] == 64  # one epoch of one batch of 64
    labels = [row["subnet"] for row in result["subnets"]]
    assert labels[:2] == ["largest", "smallest"] and 3 <= len(labels) <= 4
    assert result["front"]["samples"] == 10
    for row in result["subnets"]:
        assert 0.0 <= row["extracted_top1"] <= 1.0
        assert row["scratch_a"]["images"] == result["supernet"]["full_phase_images"]
        assert ("scratch_b" in row) == (row["subnet"] in ("largest", "smallest"))
    assert result["subnets"][0]["scratch_b"]["images"] == 2 * 64
    # Run again: the supernet and every scratch net come from the cache, unchanged.
    assert bench.main(args) == 0
    again = json.loads(out.read_text())
    assert len(again["subnets"]) == len(result["subnets"])
    for first, second in zip(result["subnets"], again["subnets"], strict=True):
        for key in ("arch", "extracted_top1", "scratch_a", "scratch_b"):
            assert first.get(key) == second.get(key), key
    assert again["supernet"] == result["supernet"]
    # An ablation: another recipe scored on the same archs, whose scratch nets are cached.
    ablation = tmp_path / "ablation.json"
    other = [a if a != "subnet_loss=mean" else "subnet_loss=sum" for a in args]
    other[other.index(str(out))] = str(ablation)
    assert bench.main([*other, "--archs-from", str(out)]) == 0
    varied = json.loads(ablation.read_text())
    assert varied["run"] != result["run"] and varied["front"] == {"archs_from": str(out)}
    assert [r["arch"] for r in varied["subnets"]] == [r["arch"] for r in result["subnets"]]
    for first, second in zip(result["subnets"], varied["subnets"], strict=True):
        assert first["scratch_a"] == second["scratch_a"]


def test_a_share_of_the_test_images_is_drawn_from_every_class() -> None:
    digits = load_dataset("digits", image_size=8)
    ordered = digits.val.subset(torch.argsort(digits.val.labels, stable=True))
    splits = dataclasses.replace(digits, val=ordered)  # listed class by class, as a folder is
    share = bench.held_out_share(splits, 60)
    assert len(share) == 60 and len(set(share.labels.tolist())) == 10
    assert bench.held_out_share(splits, 10_000) is splits.val


@pytest.mark.parametrize(
    ("which", "trained"),
    [
        ("all", {"largest", "smallest", "front 1"}),
        ("ends", {"largest", "smallest"}),
        ("largest", {"largest"}),
        ("smallest", {"smallest"}),
    ],
)
def test_scratch_archs_picks_which_archs_train_alone(which: str, trained: set[str]) -> None:
    assert bench.parse_args(["--scratch-archs", which]).scratch_archs == which
    labels = ("largest", "smallest", "front 1")
    assert {label for label in labels if bench._trains_alone(label, which)} == trained
