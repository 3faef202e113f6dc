"""Batching by explicit generators, whole or as one rank's shard of each global batch.

The index lists of an epoch are drawn up front and handed to the source in one go: an
in-memory source indexes its tensor (no DataLoader, no worker start-up or
nondeterminism), a streamed one decodes ahead in worker processes.

With several data-parallel ranks, every rank draws the same permutation and cuts the
same global batches of ``batch_size x count`` images; rank ``r`` reads the ``r``-th slice
of each. So the ranks together see exactly the batches one process would see with the
global batch size, and each rank reads (and decodes) only its own share.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Integral

import torch

from ofa_fleet.data.dataset import DataSplits, ImageSource
from ofa_fleet.data.transforms import normalize
from ofa_fleet.errors import InvalidArgumentError


@dataclass(frozen=True)
class Shard:
    """Rank ``rank`` of ``count`` data-parallel ranks (one process: ``Shard()``)."""

    rank: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.rank < self.count:
            raise InvalidArgumentError(f"rank must lie in 0..{self.count - 1}, got {self.rank}")


WHOLE = Shard()


def iterate_batches(
    dataset: ImageSource,
    batch_size: int,
    *,
    generator: torch.Generator | None,
    drop_last: bool,
    shard: Shard = WHOLE,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of (uint8 images, int64 labels); shuffled when ``generator`` is given.

    ``batch_size`` is per rank. The permutation is drawn when iteration starts, so the
    generator advances once per epoch and two runs from the same seed see the same batches.
    A rank whose slice of a short last batch is empty yields nothing for it.
    """
    _check_positive("batch_size", batch_size)
    yield from dataset.batches(epoch_indices(len(dataset), batch_size, generator, drop_last, shard))


def epoch_indices(
    count: int,
    batch_size: int,
    generator: torch.Generator | None,
    drop_last: bool,
    shard: Shard = WHOLE,
) -> list[torch.Tensor]:
    """The int64 positions of each of this rank's batches in one epoch."""
    global_size = batch_size * shard.count
    stop = count - count % global_size if drop_last else count
    order = torch.arange(count) if generator is None else torch.randperm(count, generator=generator)
    indices = []
    for start in range(0, stop, global_size):
        begin = min(stop, start + shard.rank * batch_size)
        index = order[begin : min(stop, begin + batch_size)]
        if len(index):
            indices.append(index)
    return indices


def steps_per_epoch(count: int, batch_size: int, shard: Shard = WHOLE) -> int:
    """Full global batches in an epoch of ``count`` images (training drops the rest)."""
    return count // (batch_size * shard.count)


def calibration_batches(
    splits: DataSplits, count: int, batch_size: int, seed: int
) -> list[torch.Tensor]:
    """``count`` normalised training batches, without augmentation, for BatchNorm statistics.

    Batches are consecutive slices of seeded permutations of the training split: within
    one pass no image repeats, and a new pass starts rather than hand out a short batch
    (a short batch would weigh its few images too heavily in the running statistics).
    A ``batch_size`` above the training size is capped at it.
    """
    _check_positive("count", count)
    _check_positive("batch_size", batch_size)
    train = splits.train
    size = min(batch_size, len(train))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train), generator=generator)
    position = 0
    indices = []
    for _ in range(count):
        if position + size > len(order):
            order, position = torch.randperm(len(train), generator=generator), 0
        indices.append(order[position : position + size])
        position += size
    return [normalize(images, splits.normalization) for images, _ in train.batches(indices)]


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
