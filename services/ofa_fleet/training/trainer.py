"""Progressive-shrinking training of a supernet, resumable to the exact same result.

Every random choice of an epoch (shuffle order, augmentation, resolution, sampled subnets,
dropout) derives from ``(seed, phase, epoch)``, and the learning rate is a pure function
of the step; so a run resumed from any epoch's checkpoint continues exactly as the
uninterrupted run would have.

The same loop runs in one CPU process, on one GPU (`Accelerator`: bf16 autocast,
channels-last) and as one rank of many data-parallel workers (`Collective`, set up by
`training.ray_train`). Ranks draw the same subnets and cut the same global batches, each
reading its own slice (`data.Shard`); gradients are averaged once per step. The global
batch is ``ranks x batch_size``, and the learning rate scales with it (Goyal et al.'s
linear rule: the mean gradient of a k-times larger batch is about as noisy as k steps'
worth, so a k-times larger step keeps the trajectory), ramped up linearly from the
single-process rate over the first ``warmup_epochs`` of each phase, since a scaled rate
applied at once to weights the previous phase left diverges early. With one rank
nothing changes.

Every epoch's compute is metered (`EnergyModel.meter`, the whole process, two clock reads
a block), summed over the ranks, and kept per phase in the figures, so the carbon ledger
knows what the supernet cost. A checkpoint save is billed with the next epoch's figures,
since the file cannot hold the cost of writing itself; only a run's last save goes
unbilled (a small fraction of an epoch).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from ofa_fleet.carbon.cost import ZERO, EnergyCost
from ofa_fleet.carbon.meter import EnergyModel
from ofa_fleet.core.accelerator import CPU, Accelerator
from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import (
    Checkpoint,
    TrainingFigures,
    load_checkpoint,
    save_checkpoint,
)
from ofa_fleet.core.elastic_ops import ElasticBatchNorm
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.core.supernet import OFASupernet
from ofa_fleet.data import (
    DataSplits,
    Shard,
    augment,
    iterate_batches,
    normalize,
    resize,
    steps_per_epoch,
)
from ofa_fleet.errors import CheckpointError, DataError
from ofa_fleet.subnet import materialize
from ofa_fleet.training.collective import Collective, SingleProcess
from ofa_fleet.training.config import TrainConfig
from ofa_fleet.training.evaluate import count_correct
from ofa_fleet.training.phases import Phase, progressive_phases

# Progress is read off the device at most this often: reading a loss waits for the GPU,
# and waiting every step would stop it from running ahead of the Python loop.
PROGRESS_INTERVAL_S = 0.5


class TrainingObserver(Protocol):
    """Receives progress; the CLI draws a progress bar, tests pass `SilentObserver`.

    On several ranks every rank has one; rank 0's also sees ``epoch_done``.
    """

    def phase_started(self, phase: Phase, epoch: int, steps_per_epoch: int) -> None: ...

    def steps_done(self, steps: int, images: int, loss: float) -> None:
        """``steps`` more steps of this rank, ``images`` more images over all ranks."""
        ...

    def epoch_done(self, record: dict[str, Any]) -> None: ...


class SilentObserver:
    def phase_started(self, phase: Phase, epoch: int, steps_per_epoch: int) -> None:
        pass

    def steps_done(self, steps: int, images: int, loss: float) -> None:
        pass

    def epoch_done(self, record: dict[str, Any]) -> None:
        pass


class CheckpointSink(Protocol):
    """Where a run's checkpoints go; every rank calls ``save`` at the same point."""

    def save(self, write: Callable[[Path], str], record: dict[str, Any]) -> str:
        """Have rank 0 ``write`` the checkpoint to a path; return its version ("" elsewhere)."""
        ...


@dataclass(frozen=True)
class FileSink:
    """One process writing its checkpoint to one file (atomically, by `save_checkpoint`)."""

    path: Path

    def save(self, write: Callable[[Path], str], record: dict[str, Any]) -> str:
        return write(self.path)


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


def scaled_lr(base: float, ranks: int, step: int, total_steps: int, warmup_steps: int) -> float:
    """The cosine schedule at ``ranks`` times the peak, reached after a linear warmup.

    With one rank this is `cosine_lr` itself (no warmup needed: nothing is scaled).
    """
    if ranks == 1:
        return cosine_lr(base, step, total_steps)
    peak = base * ranks
    if step < warmup_steps:
        peak = base + (peak - base) * step / warmup_steps
    return cosine_lr(peak, step, total_steps)


def phase_lr(
    base: float,
    ranks: int,
    step: int,
    total_steps: int,
    rank_warmup_steps: int,
    phase_warmup_steps: int,
) -> float:
    """The learning rate of ``step`` within a phase.

    With ``phase_warmup_steps`` the rate ramps linearly from zero to the (rank-scaled)
    peak over those steps, then decays on a cosine over the rest; the ramp from zero also
    covers the ranks' warmup. Without, `scaled_lr`.
    """
    if phase_warmup_steps <= 0:
        return scaled_lr(base, ranks, step, total_steps, rank_warmup_steps)
    peak = base * ranks
    if step < phase_warmup_steps:
        return peak * (step + 1) / phase_warmup_steps
    return cosine_lr(peak, step - phase_warmup_steps, total_steps - phase_warmup_steps)


def set_teacher_mode(teacher: OFASupernet, norm: str) -> None:
    """Evaluation mode, except with ``norm == "batch"``: BatchNorm then normalises each batch
    by its own statistics (right for the resolution the batch is at) and never updates
    the stored ones (momentum 0)."""
    teacher.eval()
    if norm != "batch":
        return
    for module in teacher.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = 0.0
            module.train()
        elif isinstance(module, ElasticBatchNorm):
            module.train()


def epoch_seed(seed: int, phase_index: int, epoch: int) -> int:
    return (seed * 1_000_003 + phase_index * 10_007 + epoch) % (2**31)


def make_optimizer(supernet: OFASupernet, config: TrainConfig, lr: float) -> torch.optim.SGD:
    """SGD with Nesterov momentum; no weight decay on BatchNorm, biases or transforms."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
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


# The state dict keys of the classifier, which a fine-tune on other classes replaces.
CLASSIFIER = "head.classifier."


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
        *,
        accelerator: Accelerator = CPU,
        collective: Collective | None = None,
        checkpoints: CheckpointSink | None = None,
    ) -> None:
        self.splits = splits
        self.out = Path(out)
        self.config = config
        self.observer = observer or SilentObserver()
        self.accelerator = accelerator
        self.collective = collective or SingleProcess()
        self.checkpoints = checkpoints or FileSink(self.out)
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)  # the initial weights are part of the seeded run
            self.supernet = OFASupernet(
                space, splits.train.channels, len(splits.train.classes), config.dropout
            )
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
        *,
        source: Checkpoint | None = None,
        accelerator: Accelerator = CPU,
        collective: Collective | None = None,
        checkpoints: CheckpointSink | None = None,
    ) -> ProgressiveTrainer:
        """Continue from ``source`` (default: the checkpoint at ``out``) with its settings.

        Any device and any number of ranks can continue any checkpoint: it holds
        CPU tensors and no trace of how many ranks wrote it.
        """
        checkpoint = source if source is not None else load_checkpoint(out)
        _check_same_data(checkpoint, splits)
        config = TrainConfig.from_dict(checkpoint.train_config)
        trainer = cls(
            splits,
            out,
            config,
            checkpoint.space,
            observer,
            energy_model,
            accelerator=accelerator,
            collective=collective,
            checkpoints=checkpoints,
        )
        trainer.supernet.load_state_dict(checkpoint.supernet.state_dict())
        if checkpoint.teacher_state is not None:
            trainer.teacher = copy.deepcopy(trainer.supernet)
            trainer.teacher.load_state_dict(checkpoint.teacher_state)
            set_teacher_mode(trainer.teacher, config.teacher_norm)
        trainer.figures = checkpoint.figures
        trainer.progress = dict(checkpoint.progress)
        trainer.optimizer_state = checkpoint.optimizer_state
        return trainer

    @classmethod
    def from_init(
        cls,
        splits: DataSplits,
        out: Path,
        config: TrainConfig,
        init: Checkpoint,
        observer: TrainingObserver | None = None,
        *,
        accelerator: Accelerator = CPU,
    ) -> ProgressiveTrainer:
        """A fine-tune of ``init``'s supernet on ``splits``: every weight and statistic
        taken over but the classifier, which is new for the data's classes (kept only
        when they are ``init``'s own, in its order)."""
        if splits.train.channels != init.supernet.in_channels:
            raise DataError(
                f"the data has {splits.train.channels} channel(s); the supernet to start "
                f"from takes {init.supernet.in_channels}"
            )
        trainer = cls(splits, out, config, init.space, observer, accelerator=accelerator)
        state = init.supernet.state_dict()
        if tuple(splits.train.classes) != init.classes:
            fresh = trainer.supernet.state_dict()
            state = {**state, **{k: v for k, v in fresh.items() if k.startswith(CLASSIFIER)}}
        trainer.supernet.load_state_dict(state)
        return trainer

    def run(self) -> TrainResult:
        self._place_networks()
        version, trained = "", False
        for index, phase in enumerate(self.phases):
            if index < self.progress["phase"]:
                continue
            start_epoch = self.progress["epoch"] if index == self.progress["phase"] else 0
            if start_epoch >= phase.epochs:
                continue
            with self.energy_model.meter() as setup:
                optimizer = self._begin_phase(phase, start_epoch)
            self._bill(phase.name, setup.cost)
            steps = steps_per_epoch(len(self.splits.train), self.config.batch_size, self.shard)
            self.observer.phase_started(phase, start_epoch, steps)
            for epoch in range(start_epoch, phase.epochs):
                with self.energy_model.meter() as reading:
                    record = self._train_epoch(index, phase, epoch, optimizer, steps)
                self._bill(phase.name, reading.cost)
                self._record_energy()
                later = self.phases[index + 1 :]
                finished = epoch == phase.epochs - 1 and all(p.epochs == 0 for p in later)
                self.progress = {"phase": index, "epoch": epoch + 1, "finished": int(finished)}
                with self.energy_model.meter() as saving:
                    version = self._save(optimizer, record)
                self._bill(phase.name, saving.cost)
                record["supernet_version"] = version
                trained = True
                if self.shard.rank == 0:
                    self.observer.epoch_done(record)
        if not trained:  # nothing left to train: the checkpoint is already complete
            self.progress["finished"] = 1
            version = self._save(None, {})
        return TrainResult(self.out, version, self.figures)

    @property
    def shard(self) -> Shard:
        return self.collective.shard

    def _place_networks(self) -> None:
        """Move supernet and teacher to the device and layout, identical on every rank."""
        for net in (self.supernet, self.teacher):
            if net is None:
                continue
            net.to(self.accelerator.device)
            self.collective.broadcast_state(net)  # after the move: NCCL reduces GPU tensors
            if self.config.channels_last:
                # Teacher too: a format change alters float rounding, and resume must be exact.
                net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def _bill(self, phase: str, cost: EnergyCost) -> None:
        self._unbilled[phase] = self._unbilled.get(phase, ZERO) + cost

    def _record_energy(self) -> None:
        """Move what was metered, summed over the ranks, into the figures for the next save."""
        energy = self.figures.energy
        for phase, cost in self._unbilled.items():
            cpu, joules, grams = self.collective.sum(
                [cost.cpu_seconds, cost.joules, cost.co2e_grams]
            )
            summed = EnergyCost(cpu, joules, grams) if self.shard.count > 1 else cost
            energy[phase] = (EnergyCost.from_dict(energy.get(phase, {})) + summed).to_dict()
        self._unbilled.clear()
        if not self.figures.energy_model:  # the model of the run that started training
            self.figures.energy_model = self.energy_model.describe()

    def _begin_phase(self, phase: Phase, start_epoch: int) -> torch.optim.SGD:
        if start_epoch == 0:
            if phase.sort_channels_first:
                self.supernet.sort_channels_by_importance()
            if phase.distill and self.teacher is None:
                self.teacher = copy.deepcopy(self.supernet)
                set_teacher_mode(self.teacher, self.config.teacher_norm)
            self.optimizer_state = None
        optimizer = make_optimizer(self.supernet, self.config, phase.lr)
        if self.optimizer_state is not None:
            # Moves the saved state onto each parameter's device (a CPU checkpoint on a GPU).
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
        batch, shard = self.config.batch_size, self.shard
        warmup = round(self.config.warmup_epochs * steps)
        phase_warmup = round(self.config.phase_warmup_epochs * steps) if phase.elastic else 0
        wall, cpu = time.perf_counter(), time.process_time()
        self.supernet.train()
        losses = _LossTally(self.observer, self.accelerator.device, steps)
        batches = iterate_batches(
            self.splits.train, batch, generator=shuffle, drop_last=True, shard=shard
        )
        lr = phase.lr
        for step, (images, labels) in enumerate(batches):
            resolution = rng.choice(space.resolutions)
            cropped = augment(
                images,
                augmentation,
                flip=self.splits.flip,
                drawn_for=batch * shard.count,
                offset=batch * shard.rank,
            )
            x = self._prepare(cropped, resolution)
            lr = phase_lr(
                phase.lr,
                shard.count,
                epoch * steps + step,
                phase.epochs * steps,
                warmup,
                phase_warmup,
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            subnets = phase.subnets(space, rng, resolution, self.config.random_subnets)
            labels = self.accelerator.put(labels)
            loss = self._step(x, labels, subnets, phase, resolution, optimizer)
            global_images = len(labels) * shard.count
            self.figures.images_seen += global_images
            self.figures.subnet_images += global_images * len(subnets)
            losses.add(loss, global_images)
        loss_sum, cpu_seconds = self.collective.sum([losses.total(), time.process_time() - cpu])
        seconds = time.perf_counter() - wall
        self.figures.epochs += 1
        self.figures.wall_seconds += seconds
        self.figures.cpu_seconds += cpu_seconds
        trained = losses.steps * batch * shard.count
        record = {
            "phase": phase.name,
            "epoch": epoch + 1,
            "loss": loss_sum / max(1, losses.steps * shard.count),
            "lr_end": lr,
            "train_seconds": seconds,  # the steps alone, validation not included
            "images_per_s": trained / max(seconds, 1e-9),
            **self._validate(phase),
        }
        self.figures.history.append(record)
        return record

    def _prepare(self, images: torch.Tensor, resolution: int) -> torch.Tensor:
        """Augmented uint8 images to the network's input on the device: the uint8 batch
        travels (a quarter of float32's bytes), normalising and resizing run there."""
        x = normalize(self.accelerator.put(images), self.splits.normalization)
        x = resize(x, resolution)
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _step(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        subnets: list[ArchConfig],
        phase: Phase,
        resolution: int,
        optimizer: torch.optim.SGD,
    ) -> torch.Tensor:
        """One optimizer step over the sandwich; the mean loss, still on the device.

        Each of the config's ``micro_batches`` parts of the batch runs its own forward and
        backward pass (its own BatchNorm statistics, as on a rank of its own) and adds its
        share to the gradients.
        """
        optimizer.zero_grad(set_to_none=True)
        parts = self.config.micro_batches
        # "mean": the sandwich's step is one subnet's, whatever the number of subnets.
        weight = 1.0 / len(subnets) if self.config.subnet_loss == "mean" else 1.0
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        for x_part, labels_part in zip(x.chunk(parts), labels.chunk(parts), strict=True):
            teacher_logits = None
            if phase.distill and self.teacher is not None:
                with torch.no_grad(), self.accelerator.autocast():
                    largest = phase.largest(self.supernet.space, resolution)
                    teacher_logits = self.teacher(x_part, largest)
            for arch in subnets:
                with self.accelerator.autocast():
                    logits = self.supernet(x_part, arch)
                    loss = F.cross_entropy(
                        logits, labels_part, label_smoothing=self.config.label_smoothing
                    )
                    if teacher_logits is not None:
                        loss = loss + self.config.kd_ratio * soft_cross_entropy(
                            logits, teacher_logits
                        )
                    if parts > 1:
                        loss = loss / parts
                (loss * weight if weight != 1.0 else loss).backward()
                total += loss.detach()
        self.collective.average_gradients(self.supernet.parameters())
        optimizer.step()
        return total / len(subnets)

    def _validate(self, phase: Phase) -> dict[str, float]:
        """Top-1 of the phase's largest and smallest subnets, BatchNorm recalibrated.

        Each rank recalibrates the same subnet from the same batches and scores its own
        share of the held-out split; the counts are summed.
        """
        space = self.supernet.space
        top = space.resolutions[-1]
        figures = {}
        for label, arch in (
            ("val_top1_largest", phase.largest(space, top)),
            ("val_top1_smallest", phase.smallest(space, space.resolutions[0])),
        ):
            subnet = materialize(self.supernet, arch, self.splits, accelerator=self.accelerator)
            correct, seen = count_correct(
                subnet.net,
                self.splits.val,
                self.splits.normalization,
                arch.resolution,
                accelerator=self.accelerator,
                shard=self.shard,
            )
            total_correct, total_seen = self.collective.sum([correct, seen])
            figures[label] = total_correct / max(1, total_seen)
        return figures

    def _save(self, optimizer: torch.optim.SGD | None, record: dict[str, Any]) -> str:
        """Every rank: agree on BatchNorm statistics; rank 0 writes (through the sink)."""
        self.collective.average_buffers(self.supernet)
        self.optimizer_state = optimizer.state_dict() if optimizer is not None else None

        def write(path: Path) -> str:
            return save_checkpoint(
                path,
                self.supernet,
                dataset=self.splits.describe(),
                train_config=self.config.to_dict(),
                progress=self.progress,
                figures=self.figures,
                teacher_state=self.teacher.state_dict() if self.teacher is not None else None,
                optimizer_state=self.optimizer_state,
            )

        return self.checkpoints.save(write, {**record, "progress": dict(self.progress)})


class _LossTally:
    """An epoch's losses, kept on the device; read back only to report progress.

    Reading a GPU value waits for every queued kernel, so progress is read at most every
    `PROGRESS_INTERVAL_S` (and at the epoch's last step), not after each step.
    """

    def __init__(self, observer: TrainingObserver, device: torch.device, steps: int) -> None:
        self.observer = observer
        self.expected = steps
        self.sum = torch.zeros((), dtype=torch.float64, device=device)
        self.pending = torch.zeros_like(self.sum)
        self.steps = self.pending_steps = self.pending_images = 0
        self.reported_at = time.monotonic()

    def add(self, loss: torch.Tensor, images: int) -> None:
        self.sum += loss
        self.pending += loss
        self.steps += 1
        self.pending_steps += 1
        self.pending_images += images
        now = time.monotonic()
        if self.steps == self.expected or now - self.reported_at >= PROGRESS_INTERVAL_S:
            mean = float(self.pending) / self.pending_steps
            self.observer.steps_done(self.pending_steps, self.pending_images, mean)
            self.pending.zero_()
            self.pending_steps = self.pending_images = 0
            self.reported_at = now

    def total(self) -> float:
        return float(self.sum)


def _check_same_data(checkpoint: Checkpoint, splits: DataSplits) -> None:
    stored, given = checkpoint.dataset, splits.describe()
    for key in ("name", "classes", "image_size", "channels"):
        if stored.get(key) != given.get(key):
            raise CheckpointError(
                f"cannot resume: the checkpoint was trained on {key}={stored.get(key)!r}, "
                f"this data has {key}={given.get(key)!r}"
            )
