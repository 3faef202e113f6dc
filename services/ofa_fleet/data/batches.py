"""Batching over in-memory datasets, shuffled by an explicit generator.

No DataLoader: the data already sits in memory as one tensor, so a batch is one index
operation, and worker processes would only add start-up time and nondeterminism.
"""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Integral

import torch

from ofa_fleet.data.dataset import DataSplits, ImageDataset
from ofa_fleet.data.transforms import normalize
from ofa_fleet.errors import InvalidArgumentError


def iterate_batches(
    dataset: ImageDataset,
    batch_size: int,
    *,
    generator: torch.Generator | None,
    drop_last: bool,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of (uint8 images, int64 labels); shuffled when ``generator`` is given.

    The permutation is drawn when iteration starts, so the generator advances once per
    epoch and two runs from the same seed see the same batches.
    """
    _check_positive("batch_size", batch_size)
    count = len(dataset)
    stop = count - count % batch_size if drop_last else count
    if generator is None:
        for start in range(0, stop, batch_size):
            end = start + batch_size
            yield dataset.images[start:end], dataset.labels[start:end]
        return
    order = torch.randperm(count, generator=generator)
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]
        yield dataset.images[index], dataset.labels[index]


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
    batches = []
    for _ in range(count):
        if position + size > len(order):
            order, position = torch.randperm(len(train), generator=generator), 0
        index = order[position : position + size]
        position += size
        batches.append(normalize(train.images[index], splits.normalization))
    return batches


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
