"""Top-1 accuracy of a model on a held-out split."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ofa_fleet.data import ImageDataset, Normalization, iterate_batches, normalize, resize


@torch.no_grad()
def top1_accuracy(
    model: Callable[[torch.Tensor], torch.Tensor],
    dataset: ImageDataset,
    normalization: Normalization,
    resolution: int,
    batch_size: int = 256,
    channels_last: bool = False,
) -> float:
    """Share of ``dataset`` whose arg-max logit is the label, in [0, 1]."""
    correct = 0
    for images, labels in iterate_batches(dataset, batch_size, generator=None, drop_last=False):
        x = resize(normalize(images, normalization), resolution)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        correct += int((model(x).argmax(1) == labels).sum())
    return correct / max(1, len(dataset))
