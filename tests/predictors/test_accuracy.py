"""The accuracy predictor learns a ranking it was not shown, and persists faithfully."""

from __future__ import annotations

import numpy as np
import pytest

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.space import cpu_space
from ofa_fleet.errors import CheckpointError, InvalidArgumentError, NotFoundError
from ofa_fleet.predictors.accuracy import (
    AccuracyPredictor,
    AccuracySample,
    fit_accuracy_predictor,
    sample_archs_for_fit,
)

SPACE = cpu_space()


def capacity_top1(arch: ArchConfig) -> float:
    """A stand-in for measured accuracy that depends on the arch in a learnable way:
    deeper, wider, larger-kernel, higher-resolution subnets score higher."""
    blocks = arch.blocks
    score = 0.004 * sum(b.expand for b in blocks) + 0.002 * sum(b.kernel for b in blocks)
    return 0.5 + score + 0.002 * arch.resolution


@pytest.fixture(scope="module")
def fitted() -> AccuracyPredictor:
    archs = sample_archs_for_fit(SPACE, 120, seed=0)
    samples = [AccuracySample(str(a), capacity_top1(a)) for a in archs]
    return fit_accuracy_predictor(SPACE, "version1", samples, epochs=200, cost={"x": 1.0})


def test_ranks_held_out_subnets(fitted):
    quality = fitted.quality
    assert quality.holdout_samples == 24 and quality.train_samples == 96
    assert quality.kendall_tau > 0.8
    assert quality.rmse_points < 2.0


def test_save_and_load_predict_the_same(fitted, tmp_path):
    path = tmp_path / "pred.pt"
    fitted.save(path)
    loaded = AccuracyPredictor.load(path)
    archs = sample_archs_for_fit(SPACE, 30, seed=9)
    np.testing.assert_array_equal(loaded.predict(archs), fitted.predict(archs))
    assert loaded.quality == fitted.quality
    assert loaded.samples == fitted.samples
    assert loaded.cost["x"] == 1.0 and "fit_cpu_seconds" in loaded.cost


def test_refuses_another_supernet(fitted):
    with pytest.raises(InvalidArgumentError, match="fitted for supernet version1"):
        fitted.check_compatible(SPACE, "version2")


def test_needs_enough_samples():
    samples = [AccuracySample(str(ArchConfig.max(SPACE)), 0.9)] * 5
    with pytest.raises(InvalidArgumentError, match="at least 10"):
        fit_accuracy_predictor(SPACE, "v", samples)


def test_load_errors(tmp_path):
    with pytest.raises(NotFoundError):
        AccuracyPredictor.load(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a predictor")
    with pytest.raises(CheckpointError, match="not an accuracy predictor"):
        AccuracyPredictor.load(tmp_path / "junk.pt")


def test_sampled_archs_are_distinct_and_include_the_extremes():
    archs = sample_archs_for_fit(SPACE, 50, seed=1)
    assert len({str(a) for a in archs}) == 50
    assert archs[0] == ArchConfig.max(SPACE) and archs[1] == ArchConfig.min(SPACE)
