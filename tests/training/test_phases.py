import random

import pytest

from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.training.config import TrainConfig, parse_phase_epochs
from ofa_fleet.training.phases import progressive_phases
from ofa_fleet.training.trainer import cosine_lr, epoch_seed, soft_cross_entropy

SPACE = SearchSpace()


def test_phases_open_kernel_then_depth_then_expand():
    phases = progressive_phases(SPACE, TrainConfig())
    assert [p.name for p in phases] == ["full", "kernel", "depth", "expand"]
    full, kernel, depth, expand = phases
    assert full.kernel_sizes == (7,) and full.depths == (4,) and full.expand_ratios == (6,)
    assert kernel.kernel_sizes == (3, 5, 7) and kernel.depths == (4,)
    assert depth.depths == (2, 3, 4) and depth.expand_ratios == (6,)
    assert expand.expand_ratios == (3, 4, 6)
    assert [p.sort_channels_first for p in phases] == [False, False, False, True]
    assert [p.distill for p in phases] == [False, True, True, True]


def test_sandwich_is_largest_smallest_and_random_within_the_phase():
    _, kernel, _, expand = progressive_phases(SPACE, TrainConfig())
    subnets = kernel.subnets(SPACE, random.Random(0), 28, 3)
    assert len(subnets) == 5
    assert all(a.resolution == 28 for a in subnets)
    assert {b.kernel for b in subnets[1].blocks} == {3}
    for arch in subnets:
        assert arch.depths == (4, 4, 4, 4)
        assert all(b.expand == 6 for b in arch.blocks)
    smallest = expand.subnets(SPACE, random.Random(0), 24, 0)[1]
    assert smallest.depths == (2, 2, 2, 2) and {b.expand for b in smallest.blocks} == {3}


def test_full_phase_trains_the_largest_only():
    full = progressive_phases(SPACE, TrainConfig())[0]
    assert len(full.subnets(SPACE, random.Random(0), 32, 5)) == 1


def test_cosine_schedule_and_seeds():
    assert cosine_lr(0.1, 0, 100) == pytest.approx(0.1)
    assert cosine_lr(0.1, 50, 100) == pytest.approx(0.05)
    assert cosine_lr(0.1, 100, 100) == pytest.approx(0.0)
    seeds = {epoch_seed(0, p, e) for p in range(4) for e in range(50)}
    assert len(seeds) == 200


def test_soft_cross_entropy_is_smallest_at_the_teacher():
    import torch

    teacher = torch.tensor([[2.0, 0.5, -1.0]])
    at_teacher = soft_cross_entropy(teacher, teacher)
    elsewhere = soft_cross_entropy(torch.tensor([[0.0, 2.0, 0.0]]), teacher)
    assert at_teacher < elsewhere


def test_train_config_validation():
    with pytest.raises(InvalidArgumentError, match="full"):
        TrainConfig(epochs_per_phase=(0, 1, 1, 1))
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        TrainConfig(batch_size=0)
    config = TrainConfig().with_epochs(3)
    assert config.epochs_per_phase == (3, 3, 3, 3)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig().with_epochs((2, 1, 0, 0)).epochs_per_phase == (2, 1, 0, 0)


@pytest.mark.parametrize(
    ("text", "epochs"),
    [("3", (3, 3, 3, 3)), ("10,4,4,6", (10, 4, 4, 6)), ("2,1,0,0", (2, 1, 0, 0))],
)
def test_phase_epochs_are_one_number_or_four(text, epochs):
    assert parse_phase_epochs(text) == epochs


@pytest.mark.parametrize("text", ["0", "-1", "0,1,1,1", "1,2", "1,2,3,4,5", "1,-1,0,0", "x", ""])
def test_phase_epochs_that_cannot_train_are_named(text):
    with pytest.raises(InvalidArgumentError, match="epochs per phase"):
        parse_phase_epochs(text)
