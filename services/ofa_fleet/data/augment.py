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
    images: torch.Tensor,
    generator: torch.Generator,
    *,
    pad: int = 4,
    flip: bool,
    drawn_for: int | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """Random ``H`` x ``W`` crop of each image zero-padded by ``pad``, then a coin-flip mirror.

    Zero padding (not reflection) is what the CIFAR training recipes use; ``flip=False``
    for data whose mirror image means something else (digits). Draws ``2 * N`` integers,
    plus ``N`` floats when flipping, from ``generator``, for ``N = drawn_for`` images
    (default: the batch's ``B``), and applies draws ``offset`` to ``offset + B``: a rank
    holding one slice of a global batch draws for the whole batch and keeps its slice, so
    its images are cropped exactly as in a single process.
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise InvalidArgumentError(
            f"augment expects a uint8 (B, C, H, W) batch, got {images.dtype} {tuple(images.shape)}"
        )
    if isinstance(pad, bool) or not isinstance(pad, Integral) or pad < 0:
        raise InvalidArgumentError(f"pad must be a non-negative integer, got {pad!r}")
    batch, channels, height, width = images.shape
    drawn = batch if drawn_for is None else drawn_for
    if not 0 <= offset <= drawn - batch:
        raise InvalidArgumentError(
            f"a batch of {batch} at offset {offset} does not fit in {drawn} drawn images"
        )
    mine = slice(offset, offset + batch)
    padded = F.pad(images, (pad, pad, pad, pad)) if pad else images
    dy = torch.randint(0, 2 * pad + 1, (drawn, 1), generator=generator)[mine]
    dx = torch.randint(0, 2 * pad + 1, (drawn, 1), generator=generator)[mine]
    rows = dy + torch.arange(height)  # (B, H): padded row of each output row
    cols = dx + torch.arange(width)  # (B, W)
    if flip:
        mirrored = torch.rand(drawn, 1, generator=generator)[mine] < 0.5
        cols = torch.where(mirrored, cols.flip(1), cols)
    # One gather over flattened padded images: offset of (row, col) in each padded plane.
    flat = rows[:, :, None] * padded.shape[-1] + cols[:, None, :]  # (B, H, W)
    index = flat.reshape(batch, 1, height * width).expand(batch, channels, height * width)
    out = padded.reshape(batch, channels, -1).gather(2, index)
    return out.reshape(batch, channels, height, width)
