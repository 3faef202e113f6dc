"""Training settings, typed and read once, then passed down."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ofa_fleet.errors import InvalidArgumentError

PHASE_NAMES = ("full", "kernel", "depth", "expand")
SUBNET_LOSSES = ("sum", "mean")
TEACHER_NORMS = ("running", "batch")
# What a checkpoint written before a setting existed trained with: its resume stays exact.
BEFORE_SETTING = {
    "subnet_loss": "sum",
    "phase_warmup_epochs": 0.0,
    "teacher_norm": "running",
    "init_from": "",
}
# Fine-tuning a trained supernet on new data (`train --init`): the features are trained
# already, so each phase is short and its steps a tenth of a from-scratch run's; the
# 'full' phase fits the new classifier (and adapts the rest) before the elastic phases
# bring every subnet along, distilled from the fine-tuned largest network as always.
TRANSFER_EPOCHS = (2, 1, 1, 1)
TRANSFER_LRS = (0.01, 0.003, 0.003, 0.003)


@dataclass(frozen=True)
class TrainConfig:
    """How to train a supernet by progressive shrinking.

    Attributes:
        epochs_per_phase: epochs of each phase, in `PHASE_NAMES` order.
        lrs: peak learning rate of each phase (cosine decay to zero within the phase).
        batch_size: images per step.
        random_subnets: random subnets per step, besides the largest and smallest
            (the sandwich rule); the ``full`` phase trains the largest only.
        kd_ratio: weight of the distillation loss from the full network (0: none).
        label_smoothing: for the cross-entropy against labels.
        momentum, weight_decay: SGD settings; no decay on BatchNorm and biases.
        seed: every random choice (shuffling, augmentation, subnets) derives from it.
        threads: torch intra-op threads (0: leave torch's default).
        channels_last: NHWC memory format, 2-3x faster for depthwise convs on CPU.
        dropout: before the classifier.
        micro_batches: parts each batch is split into, each with its own forward and
            backward pass and BatchNorm statistics, their gradients summed: a batch larger
            than one device holds, or one process doing exactly what as many
            data-parallel ranks do (each normalises over its own share).
        warmup_epochs: with several data-parallel ranks, the epochs at the start of each
            phase over which the learning rate ramps up from the rate for ``batch_size``
            to the rate for the global batch (ranks x ``batch_size``); no effect on one.
        subnet_loss: how an elastic step combines its subnets' losses: ``sum`` (each
            subnet's gradient at full weight, a step as large as the subnet count times
            one subnet's) or ``mean`` (the step of one subnet, whatever their number).
        phase_warmup_epochs: the epochs at the start of each elastic phase over which the
            learning rate ramps up from zero to the phase's peak: the weights the previous
            phase left are met with small steps while new choices open up.
        teacher_norm: the distillation teacher's BatchNorm: ``running`` (the statistics
            stored at the end of the full phase, an average over every resolution) or
            ``batch`` (each batch's own statistics, right for the resolution it is at).
        init_from: what a fine-tune started from (`train --init`): the file, its supernet
            version and where that came from; empty for a run from random weights.
    """

    epochs_per_phase: tuple[int, int, int, int] = (10, 4, 4, 6)
    lrs: tuple[float, float, float, float] = (0.1, 0.03, 0.03, 0.03)
    batch_size: int = 64
    random_subnets: int = 2
    kd_ratio: float = 1.0
    label_smoothing: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 4e-5
    seed: int = 0
    threads: int = 0
    channels_last: bool = True
    dropout: float = 0.1
    warmup_epochs: float = 1.0
    micro_batches: int = 1
    subnet_loss: str = "sum"
    phase_warmup_epochs: float = 0.0
    teacher_norm: str = "running"
    init_from: str = ""

    def __post_init__(self) -> None:
        if len(self.epochs_per_phase) != 4 or any(e < 0 for e in self.epochs_per_phase):
            raise InvalidArgumentError(
                f"epochs_per_phase needs 4 non-negative values, got {self.epochs_per_phase}"
            )
        if self.epochs_per_phase[0] == 0:
            raise InvalidArgumentError("the 'full' phase needs at least one epoch")
        if len(self.lrs) != 4 or any(lr <= 0 for lr in self.lrs):
            raise InvalidArgumentError(f"lrs needs 4 positive values, got {self.lrs}")
        if self.batch_size <= 0:
            raise InvalidArgumentError(f"batch_size must be positive, got {self.batch_size}")
        if self.random_subnets < 0 or self.kd_ratio < 0:
            raise InvalidArgumentError("random_subnets and kd_ratio must be >= 0")
        if self.micro_batches < 1 or self.batch_size % self.micro_batches:
            raise InvalidArgumentError(
                f"micro_batches must divide batch_size ({self.batch_size}), "
                f"got {self.micro_batches}"
            )
        if not 0 <= self.warmup_epochs <= 1000:
            raise InvalidArgumentError(
                f"warmup_epochs must lie in 0..1000, got {self.warmup_epochs}"
            )

        if self.subnet_loss not in SUBNET_LOSSES:
            raise InvalidArgumentError(
                f"subnet_loss must be one of {', '.join(SUBNET_LOSSES)}, got {self.subnet_loss!r}"
            )
        if not 0 <= self.phase_warmup_epochs <= 1000:
            raise InvalidArgumentError(
                f"phase_warmup_epochs must lie in 0..1000, got {self.phase_warmup_epochs}"
            )
        if self.teacher_norm not in TEACHER_NORMS:
            raise InvalidArgumentError(
                f"teacher_norm must be one of {', '.join(TEACHER_NORMS)}, got {self.teacher_norm!r}"
            )

    @classmethod
    def for_transfer(cls, seed: int, init_from: str) -> TrainConfig:
        """The fine-tuning schedule (`TRANSFER_EPOCHS`, `TRANSFER_LRS`)."""
        return cls(
            epochs_per_phase=TRANSFER_EPOCHS, lrs=TRANSFER_LRS, seed=seed, init_from=init_from
        )

    def with_epochs(self, epochs: int | tuple[int, int, int, int]) -> TrainConfig:
        """The same settings with ``epochs`` in every phase, or each phase its own."""
        values = asdict(self)
        values["epochs_per_phase"] = (epochs,) * 4 if isinstance(epochs, int) else tuple(epochs)
        values["lrs"] = tuple(self.lrs)
        return TrainConfig(**values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["epochs_per_phase"] = list(self.epochs_per_phase)
        data["lrs"] = list(self.lrs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        values = {**BEFORE_SETTING, **data}
        values["epochs_per_phase"] = tuple(values["epochs_per_phase"])
        values["lrs"] = tuple(values["lrs"])
        return cls(**values)


def parse_phase_epochs(text: str) -> tuple[int, int, int, int]:
    """``N`` (every phase) or ``FULL,KERNEL,DEPTH,EXPAND``, as a user types it on a command
    line: a short run that still opens an elastic phase, such as ``2,1,0,0``."""
    parts = text.split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise InvalidArgumentError(
            f"epochs per phase: expected N or four numbers like 10,4,4,6, got {text!r}"
        ) from None
    if len(values) == 1:
        values *= 4
    if len(values) != 4 or any(v < 0 for v in values) or values[0] == 0:
        raise InvalidArgumentError(
            f"epochs per phase: N > 0, or four numbers (the first > 0, none negative), got {text!r}"
        )
    return values[0], values[1], values[2], values[3]
