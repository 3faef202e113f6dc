"""Random crop and flip on uint8 batches, drawn from an explicit generator.

All randomness comes from the caller's ``torch.Generator``, so a training run is
reproducible from its seed and resumes exactly; the whole batch is one gather, with no
Python loop over samples.
"""

from __future__ import annotations

from numbers import Integral

import torch
import torch.nn.functional as F

from ofa_fleet.errors import InvalidArgumentError


def augment(
    images: torch.Tensor, generator: torch.Generator, *, pad: int = 4, flip: bool
) -> torch.Tensor:
    """Random ``H`` x ``W`` crop of each image zero-padded by ``pad``, then a coin-flip mirror.

    Zero padding (not reflection) is what the CIFAR training recipes use; ``flip=False``
    for data whose mirror image means something else (digits). Draws ``2 * B`` integers,
    plus ``B`` floats when flipping, from ``generator``.
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise InvalidArgumentError(
            f"augment expects a uint8 (B, C, H, W) batch, got {images.dtype} {tuple(images.shape)}"
        )
    if isinstance(pad, bool) or not isinstance(pad, Integral) or pad < 0:
        raise InvalidArgumentError(f"pad must be a non-negative integer, got {pad!r}")
    batch, channels, height, width = images.shape
    padded = F.pad(images, (pad, pad, pad, pad)) if pad else images
    dy = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator)
    rows = dy + torch.arange(height)  # (B, H): padded row of each output row
    cols = dx + torch.arange(width)  # (B, W)
    if flip:
        mirrored = torch.rand(batch, 1, generator=generator) < 0.5
        cols = torch.where(mirrored, cols.flip(1), cols)
    # One gather over flattened padded images: offset of (row, col) in each padded plane.
    flat = rows[:, :, None] * padded.shape[-1] + cols[:, None, :]  # (B, H, W)
    index = flat.reshape(batch, 1, height * width).expand(batch, channels, height * width)
    out = padded.reshape(batch, channels, -1).gather(2, index)
    return out.reshape(batch, channels, height, width)
