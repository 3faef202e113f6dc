"""Progressive-shrinking training of a supernet, resumable to the exact same result.

Every random choice of an epoch (shuffle order, augmentation, resolution, sampled subnets,
dropout) derives from ``(seed, phase, epoch)``, and the learning rate is a pure function
of the step; so a run resumed from any epoch's checkpoint continues exactly as the
uninterrupted run would have.

Every epoch's compute is metered (`EnergyModel.meter`, the whole process, two clock reads
a block) and kept per phase in the figures, so the carbon ledger knows what the supernet
cost. A checkpoint save is billed with the next epoch's figures, since the file cannot
hold the cost of writing itself; only a run's last save goes unbilled (a small fraction of
an epoch).
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from ofa_fleet.carbon.cost import ZERO, EnergyCost
from ofa_fleet.carbon.meter import EnergyModel
from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.core.supernet import OFASupernet
from ofa_fleet.data import DataSplits, augment, iterate_batches, normalize, resize
from ofa_fleet.errors import CheckpointError
from ofa_fleet.subnet import materialize
from ofa_fleet.training.checkpoint import (
    Checkpoint,
    TrainingFigures,
    load_checkpoint,
    save_checkpoint,
)
from ofa_fleet.training.config import TrainConfig
from ofa_fleet.training.evaluate import top1_accuracy
from ofa_fleet.training.phases import Phase, progressive_phases


class TrainingObserver(Protocol):
    """Receives progress; the CLI draws a progress bar, tests pass `SilentObserver`."""

    def phase_started(self, phase: Phase, epoch: int, steps_per_epoch: int) -> None: ...

    def step_done(self, loss: float) -> None: ...

    def epoch_done(self, record: dict[str, Any]) -> None: ...


class SilentObserver:
    def phase_started(self, phase: Phase, epoch: int, steps_per_epoch: int) -> None:
        pass

    def step_done(self, loss: float) -> None:
        pass

    def epoch_done(self, record: dict[str, Any]) -> None:
        pass


@dataclass(frozen=True)
class TrainResult:
    path: Path
    version: str
    figures: TrainingFigures


def soft_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the teacher's distribution (OFA's distillation loss)."""
    return torch.mean(torch.sum(-F.softmax(target_logits, 1) * F.log_softmax(logits, 1), 1))


def cosine_lr(peak: float, step: int, total_steps: int) -> float:
    return 0.5 * peak * (1.0 + math.cos(math.pi * step / max(1, total_steps)))


def epoch_seed(seed: int, phase_index: int, epoch: int) -> int:
    return (seed * 1_000_003 + phase_index * 10_007 + epoch) % (2**31)


def make_optimizer(supernet: OFASupernet, config: TrainConfig, lr: float) -> torch.optim.SGD:
    """SGD with Nesterov momentum; no weight decay on BatchNorm, biases or transforms."""
    decay, no_decay = [], []
    for name, param in supernet.named_parameters():
        (no_decay if param.ndim <= 1 or "transforms" in name else decay).append(param)
    return torch.optim.SGD(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
        momentum=config.momentum,
        nesterov=True,
    )


class ProgressiveTrainer:
    """Runs the phases; owns the supernet, teacher and optimizer of one training run."""

    def __init__(
        self,
        splits: DataSplits,
        out: Path,
        config: TrainConfig,
        space: SearchSpace,
        observer: TrainingObserver | None = None,
        energy_model: EnergyModel | None = None,
    ) -> None:
        self.splits = splits
        self.out = Path(out)
        self.config = config
        self.observer = observer or SilentObserver()
        channels = int(splits.train.images.shape[1])
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)  # the initial weights are part of the seeded run
            self.supernet = OFASupernet(space, channels, len(splits.train.classes), config.dropout)
        self.teacher: OFASupernet | None = None
        self.figures = TrainingFigures()
        self.progress = {"phase": 0, "epoch": 0, "finished": 0}
        self.optimizer_state: dict[str, Any] | None = None
        self.phases = progressive_phases(space, config)
        self.energy_model = energy_model or EnergyModel.from_environment()
        # Metered but not yet in the figures: the last save, a phase's setup.
        self._unbilled: dict[str, EnergyCost] = {}

    @classmethod
    def resume(
        cls,
        splits: DataSplits,
        out: Path,
        observer: TrainingObserver | None = None,
        energy_model: EnergyModel | None = None,
    ) -> ProgressiveTrainer:
        """Continue from the checkpoint at ``out`` with its own settings."""
        checkpoint = load_checkpoint(out)
        _check_same_data(checkpoint, splits)
        config = TrainConfig.from_dict(checkpoint.train_config)
        trainer = cls(splits, out, config, checkpoint.space, observer, energy_model)
        trainer.supernet.load_state_dict(checkpoint.supernet.state_dict())
        if checkpoint.teacher_state is not None:
            trainer.teacher = copy.deepcopy(trainer.supernet)
            trainer.teacher.load_state_dict(checkpoint.teacher_state)
            trainer.teacher.eval()
        trainer.figures = checkpoint.figures
        trainer.progress = dict(checkpoint.progress)
        trainer.optimizer_state = checkpoint.optimizer_state
        return trainer

    def run(self) -> TrainResult:
        if self.config.channels_last:
            # Teacher too: a format change alters float rounding, and resume must be exact.
            for net in (self.supernet, self.teacher):
                if net is not None:
                    net.to(memory_format=torch.channels_last)
        version = ""
        for index, phase in enumerate(self.phases):
            if index < self.progress["phase"]:
                continue
            start_epoch = self.progress["epoch"] if index == self.progress["phase"] else 0
            if start_epoch >= phase.epochs:
                continue
            with self.energy_model.meter() as setup:
                optimizer = self._begin_phase(phase, start_epoch)
            self._bill(phase.name, setup.cost)
            steps = len(self.splits.train) // self.config.batch_size
            self.observer.phase_started(phase, start_epoch, steps)
            for epoch in range(start_epoch, phase.epochs):
                with self.energy_model.meter() as reading:
                    record = self._train_epoch(index, phase, epoch, optimizer, steps)
                self._bill(phase.name, reading.cost)
                self._record_energy()
                finished = index == len(self.phases) - 1 and epoch == phase.epochs - 1
                self.progress = {"phase": index, "epoch": epoch + 1, "finished": int(finished)}
                with self.energy_model.meter() as saving:
                    version = self._save(optimizer)
                self._bill(phase.name, saving.cost)
                record["supernet_version"] = version
                self.observer.epoch_done(record)
        if not version:  # nothing left to train: the checkpoint is already complete
            self.progress["finished"] = 1
            version = self._save(None)
        return TrainResult(self.out, version, self.figures)

    def _bill(self, phase: str, cost: EnergyCost) -> None:
        self._unbilled[phase] = self._unbilled.get(phase, ZERO) + cost

    def _record_energy(self) -> None:
        """Move what was metered into the figures, which the next save writes."""
        energy = self.figures.energy
        for phase, cost in self._unbilled.items():
            energy[phase] = (EnergyCost.from_dict(energy.get(phase, {})) + cost).to_dict()
        self._unbilled.clear()
        if not self.figures.energy_model:  # the model of the run that started training
            self.figures.energy_model = self.energy_model.describe()

    def _begin_phase(self, phase: Phase, start_epoch: int) -> torch.optim.SGD:
        if start_epoch == 0:
            if phase.sort_channels_first:
                self.supernet.sort_channels_by_importance()
            if phase.distill and self.teacher is None:
                self.teacher = copy.deepcopy(self.supernet).eval()
            self.optimizer_state = None
        optimizer = make_optimizer(self.supernet, self.config, phase.lr)
        if self.optimizer_state is not None:
            optimizer.load_state_dict(self.optimizer_state)
        return optimizer

    def _train_epoch(
        self, index: int, phase: Phase, epoch: int, optimizer: torch.optim.SGD, steps: int
    ) -> dict[str, Any]:
        seed = epoch_seed(self.config.seed, index, epoch)
        torch.manual_seed(seed)
        rng = random.Random(seed)
        shuffle = torch.Generator().manual_seed(seed)
        augmentation = torch.Generator().manual_seed(seed + 1)
        space = self.supernet.space
        wall, cpu = time.perf_counter(), time.process_time()
        self.supernet.train()
        total_loss, step = 0.0, 0
        batches = iterate_batches(
            self.splits.train, self.config.batch_size, generator=shuffle, drop_last=True
        )
        for images, labels in batches:
            resolution = rng.choice(space.resolutions)
            x = normalize(
                augment(images, augmentation, flip=self.splits.flip), self.splits.normalization
            )
            x = resize(x, resolution)
            if self.config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            lr = cosine_lr(phase.lr, epoch * steps + step, phase.epochs * steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            subnets = phase.subnets(space, rng, resolution, self.config.random_subnets)
            loss = self._step(x, labels, subnets, phase, resolution, optimizer)
            total_loss += loss
            step += 1
            self.figures.images_seen += len(labels)
            self.figures.subnet_images += len(labels) * len(subnets)
            self.observer.step_done(loss)
        self.figures.epochs += 1
        self.figures.wall_seconds += time.perf_counter() - wall
        self.figures.cpu_seconds += time.process_time() - cpu
        record = {
            "phase": phase.name,
            "epoch": epoch + 1,
            "loss": total_loss / max(1, step),
            "lr_end": lr if step else phase.lr,
            **self._validate(phase),
        }
        self.figures.history.append(record)
        return record

    def _step(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        subnets: list[ArchConfig],
        phase: Phase,
        resolution: int,
        optimizer: torch.optim.SGD,
    ) -> float:
        optimizer.zero_grad(set_to_none=True)
        teacher_logits = None
        if phase.distill and self.teacher is not None:
            with torch.no_grad():
                teacher_logits = self.teacher(x, phase.largest(self.supernet.space, resolution))
        total = 0.0
        for arch in subnets:
            logits = self.supernet(x, arch)
            loss = F.cross_entropy(logits, labels, label_smoothing=self.config.label_smoothing)
            if teacher_logits is not None:
                loss = loss + self.config.kd_ratio * soft_cross_entropy(logits, teacher_logits)
            loss.backward()
            total += float(loss.detach())
        optimizer.step()
        return total / len(subnets)

    def _validate(self, phase: Phase) -> dict[str, float]:
        """Top-1 of the phase's largest and smallest subnets, BatchNorm recalibrated."""
        space = self.supernet.space
        top = space.resolutions[-1]
        figures = {}
        for label, arch in (
            ("val_top1_largest", phase.largest(space, top)),
            ("val_top1_smallest", phase.smallest(space, space.resolutions[0])),
        ):
            subnet = materialize(self.supernet, arch, self.splits)
            figures[label] = top1_accuracy(
                subnet.net, self.splits.val, self.splits.normalization, arch.resolution
            )
        return figures

    def _save(self, optimizer: torch.optim.SGD | None) -> str:
        self.optimizer_state = optimizer.state_dict() if optimizer is not None else None
        return save_checkpoint(
            self.out,
            self.supernet,
            dataset=self.splits.describe(),
            train_config=self.config.to_dict(),
            progress=self.progress,
            figures=self.figures,
            teacher_state=self.teacher.state_dict() if self.teacher is not None else None,
            optimizer_state=self.optimizer_state,
        )


def _check_same_data(checkpoint: Checkpoint, splits: DataSplits) -> None:
    stored, given = checkpoint.dataset, splits.describe()
    for key in ("name", "classes", "image_size", "channels"):
        if stored.get(key) != given.get(key):
            raise CheckpointError(
                f"cannot resume: the checkpoint was trained on {key}={stored.get(key)!r}, "
                f"this data has {key}={given.get(key)!r}"
            )
