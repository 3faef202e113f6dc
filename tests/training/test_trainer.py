"""Progressive shrinking on a tiny space: it learns, checkpoints, and resumes exactly."""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import pytest
import torch

from ofa_fleet.core.checkpoint import load_checkpoint, supernet_version
from ofa_fleet.core.space import SearchSpace, StageSpec
from ofa_fleet.data import load_dataset
from ofa_fleet.errors import CheckpointError
from ofa_fleet.training.config import TrainConfig
from ofa_fleet.training.trainer import ProgressiveTrainer, SilentObserver

TINY = SearchSpace(
    stem_width=8,
    first_block_width=8,
    stages=(StageSpec(16, 2, "relu"), StageSpec(24, 1, "hswish", use_se=True)),
    head_width=32,
    feature_width=0,
    resolutions=(12, 16),
)
CONFIG = TrainConfig(
    epochs_per_phase=(1, 1, 1, 1), batch_size=64, random_subnets=1, channels_last=True
)


def mechanics_splits():
    """A share of digits big enough for every phase to take several steps: what resuming,
    checkpointing and metering are tested on, a fifth of the time of the whole set."""
    full = load_dataset("digits", image_size=16, val_fraction=0.2, seed=0)
    return dataclasses.replace(
        full, train=full.train.subset(torch.arange(320)), val=full.val.subset(torch.arange(128))
    )


@pytest.fixture(scope="module")
def splits():
    return mechanics_splits()


@pytest.fixture(scope="module")
def full_splits():
    return load_dataset("digits", image_size=16, val_fraction=0.2, seed=0)


class StopAfter(SilentObserver):
    """Simulates a kill right after the n-th epoch's checkpoint was written."""

    def __init__(self, epochs: int) -> None:
        self.left = epochs

    def epoch_done(self, record):
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


def train(splits, path: Path, observer=None):
    return ProgressiveTrainer(splits, path, CONFIG, TINY, observer).run()


@pytest.fixture(scope="module")
def straight(splits, tmp_path_factory):
    """One uninterrupted run, the reference every resumed run must reproduce (read only)."""
    return train(splits, tmp_path_factory.mktemp("straight") / "straight.ckpt")


@pytest.mark.parametrize("stop_after", [1, 3])
def test_resume_gives_exactly_the_uninterrupted_result(splits, straight, tmp_path, stop_after):
    interrupted = tmp_path / "interrupted.ckpt"
    with pytest.raises(KeyboardInterrupt):
        train(splits, interrupted, StopAfter(stop_after))
    partial = load_checkpoint(interrupted)
    assert not partial.finished
    assert partial.figures.epochs == stop_after
    resumed = ProgressiveTrainer.resume(splits, interrupted).run()
    assert resumed.version == straight.version
    a = load_checkpoint(straight.path)
    b = load_checkpoint(interrupted)
    for key, value in a.supernet.state_dict().items():
        assert torch.equal(value, b.supernet.state_dict()[key]), key
    assert [r["loss"] for r in a.figures.history] == [r["loss"] for r in b.figures.history]
    assert b.finished and b.figures.epochs == 4


def test_checkpoint_records_what_downstream_needs(splits, straight):
    checkpoint = load_checkpoint(straight.path)
    assert checkpoint.space == TINY
    assert checkpoint.classes == tuple(str(d) for d in range(10))
    assert set(checkpoint.dataset["normalization"]) == {"mean", "std"}
    assert checkpoint.dataset["image_size"] == 16
    figures = checkpoint.figures
    assert figures.epochs == 4
    assert figures.images_seen == 4 * (len(splits.train) // 64) * 64
    assert figures.subnet_images > figures.images_seen  # the sandwich runs several subnets
    assert figures.cpu_seconds > 0 and figures.wall_seconds > 0
    assert [r["phase"] for r in figures.history] == ["full", "kernel", "depth", "expand"]
    assert checkpoint.version == supernet_version(checkpoint.supernet.state_dict())
    assert checkpoint.teacher_state is not None


def test_training_learns(full_splits, tmp_path):
    config = TrainConfig(epochs_per_phase=(4, 1, 1, 1), batch_size=64, random_subnets=1)
    result = ProgressiveTrainer(full_splits, tmp_path / "s.ckpt", config, TINY).run()
    full_phase = result.figures.history[0]
    assert full_phase["val_top1_largest"] > 0.5  # chance is 0.1
    assert result.figures.history[-1]["val_top1_smallest"] > 0.5


def test_resume_refuses_other_data(splits, tmp_path):
    path = tmp_path / "s.ckpt"
    with pytest.raises(KeyboardInterrupt):
        train(splits, path, StopAfter(1))
    other = load_dataset("digits", image_size=24, val_fraction=0.2, seed=0)
    with pytest.raises(CheckpointError, match="image_size"):
        ProgressiveTrainer.resume(other, path)


def test_corrupt_and_foreign_checkpoints_are_clear_errors(tmp_path):
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(missing)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a checkpoint: `ofa-fleet train` writes"):
        load_checkpoint(garbage)
    other_zip = tmp_path / "other.ckpt"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "a zip, but no torch archive")
    with pytest.raises(CheckpointError, match="cannot be read: ") as caught:
        load_checkpoint(other_zip)
    assert "\n" not in str(caught.value)  # torch's advice cut to its first line
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"format": "something-else"}, foreign)
    with pytest.raises(CheckpointError, match="not an ofa-fleet"):
        load_checkpoint(foreign)
