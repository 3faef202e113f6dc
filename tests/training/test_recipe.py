"""The recipe's settings: each does what it says, and a checkpoint written before a setting
existed resumes with what it was trained with."""

from __future__ import annotations

import copy
import itertools
import math
import random
from pathlib import Path

import pytest
import torch

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.space import SearchSpace, StageSpec
from ofa_fleet.core.supernet import OFASupernet
from ofa_fleet.data import load_dataset
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.training.config import BEFORE_SETTING, TrainConfig
from ofa_fleet.training.phases import progressive_phases
from ofa_fleet.training.trainer import (
    ProgressiveTrainer,
    cosine_lr,
    make_optimizer,
    phase_lr,
    scaled_lr,
    set_teacher_mode,
)

SPACE = SearchSpace(
    stem_width=8,
    first_block_width=8,
    stages=(StageSpec(16, 2, "relu"), StageSpec(16, 1, "hswish", use_se=True)),
    head_width=16,
    feature_width=0,
    resolutions=(8, 12),
)


def test_phase_warmup_ramps_from_zero_to_the_peak_then_decays_to_zero():
    peak, total, warmup = 0.03, 100, 10
    rates = [phase_lr(peak, 1, step, total, 0, warmup) for step in range(total)]
    assert rates[0] == pytest.approx(peak / warmup)
    assert rates[warmup - 1] == pytest.approx(peak)
    assert all(a < b for a, b in itertools.pairwise(rates[:warmup]))
    assert rates[warmup] == pytest.approx(peak)  # the cosine starts at the peak
    assert all(a >= b for a, b in itertools.pairwise(rates[warmup:]))
    assert rates[-1] == pytest.approx(cosine_lr(peak, total - warmup - 1, total - warmup))
    # With ranks the ramp ends at the scaled peak.
    assert phase_lr(peak, 4, warmup - 1, total, 5, warmup) == pytest.approx(4 * peak)


def test_without_phase_warmup_the_rate_is_the_scaled_cosine():
    for step in (0, 7, 63):
        assert phase_lr(0.1, 2, step, 64, 8, 0) == scaled_lr(0.1, 2, step, 64, 8)
        assert phase_lr(0.1, 1, step, 64, 0, 0) == cosine_lr(0.1, step, 64)


def test_a_config_written_before_the_settings_existed_reads_as_it_trained():
    stored = TrainConfig().to_dict()
    for key in BEFORE_SETTING:
        del stored[key]
    old = TrainConfig.from_dict(stored)
    assert old.subnet_loss == "sum" and old.phase_warmup_epochs == 0.0
    assert old.teacher_norm == "running"
    assert TrainConfig.from_dict(TrainConfig(subnet_loss="mean").to_dict()).subnet_loss == "mean"


@pytest.mark.parametrize(
    "settings",
    [{"subnet_loss": "max"}, {"phase_warmup_epochs": -1.0}, {"teacher_norm": "frozen"}],
)
def test_bad_recipe_settings_are_clear_errors(settings):
    with pytest.raises(InvalidArgumentError):
        TrainConfig(**settings)


def test_a_batch_norm_teacher_normalises_each_batch_by_its_own_statistics():
    torch.manual_seed(0)
    net = OFASupernet(SPACE, 3, 4, dropout=0.5)
    teacher = copy.deepcopy(net)
    set_teacher_mode(teacher, "batch")
    stored = {k: v.clone() for k, v in teacher.state_dict().items() if "running" in k}
    arch = ArchConfig.max(SPACE)
    x = torch.randn(16, 3, 12, 12) * 3 + 1
    with torch.no_grad():
        first, second = teacher(x, arch), teacher(x, arch)
        reference = copy.deepcopy(net).train()
        reference.head.dropout.p = 0.0
        expected = reference(x, arch)
        running = copy.deepcopy(net).eval()(x, arch)
    assert torch.equal(first, second)  # no dropout
    assert torch.allclose(first, expected, atol=1e-5)  # the batch's own statistics
    assert not torch.allclose(first, running, atol=1e-3)  # not the stored ones
    after = {k: v for k, v in teacher.state_dict().items() if "running" in k}
    assert all(torch.equal(stored[k], after[k]) for k in stored)  # and never updated
    set_teacher_mode(teacher, "running")
    with torch.no_grad():
        assert torch.allclose(teacher(x, arch), running, atol=1e-6)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", image_size=12, val_fraction=0.2, seed=0)


def _gradients(digits, tmp_path: Path, subnet_loss: str) -> list[torch.Tensor]:
    """The gradients one elastic step leaves (nothing is written: no epoch runs)."""
    config = TrainConfig(
        epochs_per_phase=(1, 1, 1, 1), batch_size=32, random_subnets=2, subnet_loss=subnet_loss
    )
    trainer = ProgressiveTrainer(digits, tmp_path / "never-written.ckpt", config, SPACE)
    phase = progressive_phases(SPACE, config)[3]
    torch.manual_seed(1)
    x = torch.randn(32, 1, 12, 12)
    labels = torch.randint(0, 10, (32,))
    subnets = phase.subnets(SPACE, random.Random(0), 12, config.random_subnets)
    optimizer = make_optimizer(trainer.supernet, config, lr=1e-12)
    trainer._step(x, labels, subnets, phase, 12, optimizer)
    return [p.grad.clone() for p in trainer.supernet.parameters() if p.grad is not None]


def test_a_mean_sandwich_steps_as_far_as_one_subnet(digits, tmp_path):
    summed, meaned = _gradients(digits, tmp_path, "sum"), _gradients(digits, tmp_path, "mean")
    assert len(summed) == len(meaned) > 0
    for s, m in zip(summed, meaned, strict=True):
        assert torch.allclose(m * 4, s, rtol=1e-4, atol=1e-7)  # 4 subnets: the sandwich
    assert math.isfinite(float(sum(g.abs().sum() for g in meaned)))
