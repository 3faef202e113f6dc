"""Top-1 accuracy of a model on a held-out split, on any device, whole or by shard."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ofa_fleet.core.accelerator import CPU, Accelerator
from ofa_fleet.data import (
    WHOLE,
    ImageSource,
    Normalization,
    Shard,
    iterate_batches,
    normalize,
    resize,
)


@torch.no_grad()
def count_correct(
    model: Callable[[torch.Tensor], torch.Tensor],
    dataset: ImageSource,
    normalization: Normalization,
    resolution: int,
    batch_size: int = 256,
    channels_last: bool = False,
    *,
    accelerator: Accelerator = CPU,
    shard: Shard = WHOLE,
) -> tuple[int, int]:
    """(images whose arg-max logit is the label, images scored) over this rank's share."""
    correct = seen = 0
    batches = iterate_batches(dataset, batch_size, generator=None, drop_last=False, shard=shard)
    for images, labels in batches:
        x = resize(normalize(accelerator.put(images), normalization), resolution)
        if channels_last or accelerator.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with accelerator.autocast():
            predicted = model(x).argmax(1)
        correct += int((predicted == accelerator.put(labels)).sum())
        seen += len(labels)
    return correct, seen


def top1_accuracy(
    model: Callable[[torch.Tensor], torch.Tensor],
    dataset: ImageSource,
    normalization: Normalization,
    resolution: int,
    batch_size: int = 256,
    channels_last: bool = False,
    *,
    accelerator: Accelerator = CPU,
) -> float:
    """Share of ``dataset`` whose arg-max logit is the label, in [0, 1]."""
    correct, _ = count_correct(
        model,
        dataset,
        normalization,
        resolution,
        batch_size,
        channels_last,
        accelerator=accelerator,
    )
    return correct / max(1, len(dataset))
