"""Training one fixed architecture from scratch: the baseline OFA claims to match.

Used by benchmarks to compare an extracted subnet with the same architecture trained on
its own, and to measure what per-device training would cost. Same data pipeline, loss
and schedule family as the supernet's full phase, so the comparison is about weight
sharing, not about recipes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ofa_fleet.core.accelerator import CPU, Accelerator
from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.extract import extract
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.core.static_net import StaticNet
from ofa_fleet.core.supernet import OFASupernet
from ofa_fleet.data import DataSplits, augment, iterate_batches, normalize, resize
from ofa_fleet.training.trainer import cosine_lr


@dataclass(frozen=True)
class ScratchResult:
    net: StaticNet
    images_seen: int
    cpu_seconds: float
    wall_seconds: float


def fresh_network(
    space: SearchSpace, arch: ArchConfig, in_channels: int, classes: int, seed: int | None = None
) -> StaticNet:
    """A randomly initialised static network of architecture ``arch``.

    With ``seed`` the initial weights are that seed's and the global torch RNG is left as
    it was; without, they come from the global RNG.
    """
    if seed is not None:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return fresh_network(space, arch, in_channels, classes)
    net = extract(OFASupernet(space, in_channels, classes), arch)
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
    return net


def train_from_scratch(
    net: StaticNet,
    arch: ArchConfig,
    splits: DataSplits,
    images: int,
    *,
    lr: float = 0.1,
    batch_size: int = 64,
    weight_decay: float = 4e-5,
    label_smoothing: float = 0.1,
    seed: int = 0,
    channels_last: bool = True,
    accelerator: Accelerator = CPU,
) -> ScratchResult:
    """Train ``net`` at ``arch.resolution`` for ``images`` training images (cosine LR)."""
    steps_per_epoch = len(splits.train) // batch_size
    total_steps = max(1, math.ceil(images / batch_size))
    epochs = math.ceil(total_steps / steps_per_epoch) if steps_per_epoch else 1
    recipe = _Recipe(lr, batch_size, weight_decay, label_smoothing, seed, channels_last)
    wall, cpu = time.perf_counter(), time.process_time()
    _, seen = list(_train(net, arch, splits, epochs, total_steps, recipe, accelerator))[-1]
    return ScratchResult(net, seen, time.process_time() - cpu, time.perf_counter() - wall)


def train_epochs(
    net: StaticNet,
    arch: ArchConfig,
    splits: DataSplits,
    epochs: int,
    *,
    lr: float = 0.1,
    batch_size: int = 64,
    weight_decay: float = 4e-5,
    label_smoothing: float = 0.1,
    seed: int = 0,
    channels_last: bool = True,
    accelerator: Accelerator = CPU,
) -> Iterator[int]:
    """Train ``net`` epoch by epoch on a cosine schedule over ``epochs``; yield after each.

    Yields the number of epochs done, so the caller can evaluate (switching the net to
    eval mode and back) and stop early by leaving the loop: the cost of reaching an
    accuracy, not of a whole schedule. The recipe is `train_from_scratch`'s.
    """
    total_steps = max(1, len(splits.train) // batch_size) * epochs
    recipe = _Recipe(lr, batch_size, weight_decay, label_smoothing, seed, channels_last)
    for done, _ in _train(net, arch, splits, epochs, total_steps, recipe, accelerator):
        yield done


@dataclass(frozen=True)
class _Recipe:
    lr: float
    batch_size: int
    weight_decay: float
    label_smoothing: float
    seed: int
    channels_last: bool


def _train(
    net: StaticNet,
    arch: ArchConfig,
    splits: DataSplits,
    epochs: int,
    total_steps: int,
    recipe: _Recipe,
    accelerator: Accelerator,
) -> Iterator[tuple[int, int]]:
    """The one training loop: up to ``epochs`` epochs, stopping after ``total_steps`` steps
    (mid-epoch if need be), the cosine over ``total_steps``. Yields (epochs done, images
    seen) after each epoch; leaves ``net`` in eval mode when run to the end."""
    _place(net, accelerator, recipe.channels_last)
    optimizer = _optimizer(net, recipe.lr, recipe.weight_decay)
    net.train()
    step, seen = 0, 0
    for epoch in range(epochs):
        for x, labels in _epoch_batches(
            splits, arch, recipe.batch_size, recipe.seed, epoch, recipe.channels_last, accelerator
        ):
            if step >= total_steps:
                break
            rate = cosine_lr(recipe.lr, step, total_steps)
            _sgd_step(net, optimizer, x, labels, rate, recipe.label_smoothing, accelerator)
            step += 1
            seen += len(labels)
        yield epoch + 1, seen
    net.eval()


def _epoch_batches(
    splits: DataSplits,
    arch: ArchConfig,
    batch_size: int,
    seed: int,
    epoch: int,
    channels_last: bool,
    accelerator: Accelerator,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch's augmented, normalised, resized batches on the device; every random
    choice from ``(seed, epoch)``, so a run repeats exactly."""
    torch.manual_seed(seed + epoch)
    shuffle = torch.Generator().manual_seed(seed + epoch)
    augmentation = torch.Generator().manual_seed(seed + epoch + 10_000)
    for batch, labels in iterate_batches(
        splits.train, batch_size, generator=shuffle, drop_last=True
    ):
        cropped = accelerator.put(augment(batch, augmentation, flip=splits.flip))
        x = resize(normalize(cropped, splits.normalization), arch.resolution)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, accelerator.put(labels)


def _sgd_step(
    net: StaticNet,
    optimizer: torch.optim.SGD,
    x: torch.Tensor,
    labels: torch.Tensor,
    lr: float,
    label_smoothing: float,
    accelerator: Accelerator,
) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    with accelerator.autocast():
        loss = F.cross_entropy(net(x), labels, label_smoothing=label_smoothing)
    loss.backward()
    optimizer.step()


def _place(net: StaticNet, accelerator: Accelerator, channels_last: bool) -> None:
    """On the device (before the optimizer takes its parameters), in the chosen layout."""
    net.to(accelerator.device)
    if channels_last:
        net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def _optimizer(net: StaticNet, lr: float, weight_decay: float) -> torch.optim.SGD:
    """SGD with Nesterov momentum; no weight decay on BatchNorm and biases."""
    decay = [p for p in net.parameters() if p.ndim > 1]
    no_decay = [p for p in net.parameters() if p.ndim <= 1]
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0}],
        lr=lr,
        momentum=0.9,
        nesterov=True,
    )
