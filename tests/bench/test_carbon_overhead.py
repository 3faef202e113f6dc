"""bench/carbon_overhead.py: its no-op and per-step meters, the summary's ratios, and a
one-round run whose variants must all have trained the same images."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ofa_fleet.carbon.meter import EnergyModel

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import carbon_overhead as bench  # noqa: E402


def test_the_no_op_model_measures_nothing_and_the_real_one_does() -> None:
    real = EnergyModel.from_environment()
    with bench.NoMeter(real.power, real.grid).meter() as nothing:
        sum(range(200_000))
    assert nothing.cpu_seconds == 0.0 and nothing.wall_seconds == 0.0
    with real.meter() as reading:
        sum(range(200_000))
    assert reading.wall_seconds > 0.0
    assert bench.meter_microseconds(real, 100) > 0.0


def test_summary_ratios_are_against_the_no_op_variant() -> None:
    runs = {
        "no-op": [bench.Run(100, 1.0, 2.0), bench.Run(100, 2.0, 2.0)],
        "metered": [bench.Run(100, 1.25, 2.5), bench.Run(100, 2.5, 2.5)],
        "per-step": [bench.Run(100, 2.0, 4.0), bench.Run(100, 1.0, 4.0)],
    }
    rows = bench.summarize(runs)
    assert rows["no-op"]["best_images_per_s"] == 100.0
    assert rows["no-op"]["best_images_per_s_ratio"] == 1.0
    assert rows["metered"]["best_images_per_s_ratio"] == pytest.approx(0.8)
    assert rows["metered"]["median_images_per_cpu_s_ratio"] == pytest.approx(0.8)
    assert rows["per-step"]["median_images_per_s_ratio"] == pytest.approx(1.0)
    assert rows["metered"]["paired_ratio_median"] == pytest.approx(0.8)
    assert rows["per-step"]["paired_ratio_min"] == pytest.approx(0.5)
    assert rows["per-step"]["paired_ratio_max"] == pytest.approx(2.0)
    assert rows["no-op"]["spread"] == pytest.approx(50.0 / 75.0)


def test_interleaving_rotates_the_order_every_round() -> None:
    order: list[str] = []

    def train(variant: str) -> bench.Run:
        order.append(variant)
        return bench.Run(1, 1.0, 1.0)

    runs = bench.interleaved(3, train, lambda: None)
    assert order == [
        "no-op", "metered", "per-step",
        "metered", "per-step", "no-op",
        "per-step", "no-op", "metered",
    ]  # fmt: skip
    assert all(len(r) == 3 for r in runs.values())


@pytest.mark.slow
def test_one_round_trains_the_same_images_in_every_variant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--rounds", "1", "--train-images", "64", "--epochs", "1,0,0,0"]
    assert bench.main([*args, "--meter-blocks", "100", "--threads", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    variants = result["variants"]
    assert list(variants) == list(bench.VARIANTS)
    assert {row["images_per_run"] for row in variants.values()} == {64}
    assert variants["no-op"]["best_images_per_s_ratio"] == 1.0
    assert all(row["best_images_per_s"] > 0 for row in variants.values())
    assert result["meter_block_microseconds"] > 0
    assert 0 <= result["implied_overhead_per_epoch_metering"] < 1
