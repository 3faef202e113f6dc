"""Progressive shrinking on two Ray Train workers (local Ray, gloo): the same training as
one process with the same global batch, resumable with another worker count, and whole
again after a worker is killed mid-epoch."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ofa_fleet.core.checkpoint import load_checkpoint
from ofa_fleet.data import DataLoading, load_dataset
from ofa_fleet.training.config import TrainConfig
from ofa_fleet.training.trainer import ProgressiveTrainer, SilentObserver
from tests.cli_runner import ofa_fleet
from tests.training.test_trainer import TINY

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SPACE = TINY
IMAGE_SIZE = 16
# One process with a global batch of 128 at the default rates; dropout off (its masks are
# drawn per rank), everything else as a user would train.
ONE = TrainConfig(
    epochs_per_phase=(1, 1, 0, 0), batch_size=128, random_subnets=1, dropout=0.0, warmup_epochs=0
)
# Two workers of 64: the same global batch; the linear rule doubles these rates back.
TWO = replace(ONE, batch_size=64, lrs=tuple(lr / 2 for lr in ONE.lrs))
# What two workers compute exactly: each half of the batch with its own BatchNorm statistics.
ONE_AS_TWO = replace(ONE, micro_batches=2)


class Watcher(SilentObserver):
    """Records what the driver relays; optionally kills rank 1 mid-way through a phase."""

    def __init__(self, kill_in: str | None = None, kill_after_steps: int = 2) -> None:
        self.workers: list[tuple[int, int]] = []
        self.phases: list[tuple[str, int]] = []
        self.steps = 0
        self.kill_in = kill_in
        self.kill_after_steps = kill_after_steps
        self.killed_pid: int | None = None

    def worker_started(self, rank: int, pid: int, node: str) -> None:
        self.workers.append((rank, pid))

    def phase_started(self, phase, epoch: int, steps_per_epoch: int) -> None:
        self.phases.append((phase.name, epoch))
        self.steps = 0

    def steps_done(self, steps: int, images: int, loss: float) -> None:
        self.steps += steps
        if (
            self.kill_in is not None
            and self.killed_pid is None
            and self.phases[-1][0] == self.kill_in
            and self.steps >= self.kill_after_steps
        ):
            self.killed_pid = dict(self.workers)[1]
            os.kill(self.killed_pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def splits():
    return load_dataset("digits", image_size=IMAGE_SIZE, val_fraction=0.2, seed=0)


def data_spec():
    from ofa_fleet.training.ray_train import DataSpec

    return DataSpec("digits", IMAGE_SIZE, 0.2, 0, DataLoading())


def on_two_workers(out: Path, observer: Watcher, **kwargs):
    from ofa_fleet.training.ray_train import WorkerPlan, train_on_ray

    plan = WorkerPlan(workers=2, storage=out.with_name(out.name + ".ray"), max_failures=2)
    return train_on_ray(data_spec(), out, plan, observer, **kwargs)


def trained(splits, path: Path, config: TrainConfig):
    ProgressiveTrainer(splits, path, config, SPACE).run()
    return load_checkpoint(path)


@pytest.fixture(scope="module")
def one_process(splits, tmp_path_factory):
    return trained(splits, tmp_path_factory.mktemp("one") / "one.ckpt", ONE)


@pytest.fixture(scope="module")
def two_workers(ray_local, tmp_path_factory):
    path = tmp_path_factory.mktemp("two") / "two.ckpt"
    watcher = Watcher()
    on_two_workers(path, watcher, config=TWO, space=SPACE)
    return load_checkpoint(path), watcher


def weights(checkpoint) -> torch.Tensor:
    state = checkpoint.supernet.state_dict()
    return torch.cat([state[k].flatten() for k in sorted(state) if state[k].is_floating_point()])


def losses(checkpoint) -> list[float]:
    return [record["loss"] for record in checkpoint.figures.history]


def test_two_workers_train_like_one_process_with_the_same_global_batch(
    splits, one_process, two_workers, tmp_path
):
    two, watcher = two_workers
    assert sorted(rank for rank, _ in watcher.workers) == [0, 1]
    assert two.finished and two.figures.epochs == one_process.figures.epochs == 2
    assert two.figures.images_seen == one_process.figures.images_seen
    # Exactly the arithmetic of one process whose batch halves are normalised apart (as
    # each rank normalises its own): equal up to float rounding, which over 22 steps
    # stays far below what normalising the whole batch at once changes.
    as_two = trained(splits, tmp_path / "as_two.ckpt", ONE_AS_TWO)
    assert losses(two)[0] == pytest.approx(losses(as_two)[0], rel=1e-4)
    assert losses(two)[1] == pytest.approx(losses(as_two)[1], rel=1e-3)
    rounding = (weights(two) - weights(as_two)).norm()
    per_rank_batchnorm = (weights(one_process) - weights(as_two)).norm()
    assert rounding < 0.35 * per_rank_batchnorm, (float(rounding), float(per_rank_batchnorm))
    # Against one process normalising the whole batch: the loss curve within 1%.
    assert losses(two) == pytest.approx(losses(one_process), rel=0.01)


def test_a_worker_killed_mid_epoch_restarts_from_the_last_checkpoint(two_workers, tmp_path):
    path = tmp_path / "killed.ckpt"
    watcher = Watcher(kill_in="kernel")
    on_two_workers(path, watcher, config=TWO, space=SPACE)
    assert watcher.killed_pid is not None
    # The group came up twice, and the cut-short phase started again from its checkpoint.
    assert len(watcher.workers) == 4
    assert watcher.phases.count(("kernel", 0)) == 2
    killed = load_checkpoint(path)
    assert killed.finished and killed.figures.epochs == 2
    # The epoch trained again from the same seeds: the result of an uninterrupted run.
    assert killed.version == two_workers[0].version


def test_resume_with_another_worker_count(ray_local, splits, one_process, tmp_path):
    path = tmp_path / "switch.ckpt"

    class StopAfterFirstEpoch(SilentObserver):
        def epoch_done(self, record):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ProgressiveTrainer(splits, path, ONE, SPACE, StopAfterFirstEpoch()).run()
    partial = load_checkpoint(path)
    assert partial.figures.epochs == 1 and not partial.finished
    watcher = Watcher()
    on_two_workers(path, watcher, resume=True)
    resumed = load_checkpoint(path)
    assert resumed.finished and resumed.figures.epochs == 2
    assert watcher.phases == [("kernel", 0)]  # nothing before the checkpoint trained again
    assert resumed.figures.history[0] == partial.figures.history[0]
    assert losses(resumed)[1] == pytest.approx(losses(one_process)[1], rel=0.01)
    # ...and back to one process: a finished checkpoint resumes to itself.
    again = ProgressiveTrainer.resume(splits, path).run()
    assert again.version == resumed.version


def test_the_command_line_trains_on_two_workers(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(SPACE.to_json())
    out = tmp_path / "cli.ckpt"
    summary = json.loads(
        ofa_fleet(
            *("train", "--data", "digits", "--out", str(out), "--space", str(space)),
            *("--image-size", "16", "--epochs-per-phase", "1,0,0,0", "--batch-size", "64"),
            *("--workers", "2", "--device", "auto", "--json"),
        ).stdout
    )
    assert summary["device"] == "2 x cpu (gloo)" and summary["workers"] == 2
    assert summary["epochs"] == 1 and summary["images_seen"] == 11 * 128
    assert load_checkpoint(out).version == summary["supernet_version"]
    assert not list(out.with_name(out.name + ".ray").glob("cli-*")), "the run's folder is gone"


def test_workers_this_machine_cannot_place_are_a_clear_error(tmp_path):
    result = ofa_fleet(
        *("train", "--out", str(tmp_path / "x.ckpt"), "--workers", "64"), check=False
    )
    assert result.returncode == 2
    assert "64 workers x 1 CPU need 64 CPUs; this machine's Ray has" in result.stderr
    assert not (tmp_path / "x.ckpt").exists()
