"""Deterministic pixel transforms: normalisation and bilinear resizing (no torchvision).

``normalize`` and ``resize`` run on every training and evaluation batch; ``resize_uint8``
runs once at load time, in chunks, so that resizing 50,000 images never holds them all
as float at once.
"""

from __future__ import annotations

from numbers import Integral

import torch
import torch.nn.functional as F

from ofa_fleet.data.dataset import Normalization
from ofa_fleet.errors import InvalidArgumentError

RESIZE_CHUNK = 2048


def normalize(images: torch.Tensor, norm: Normalization) -> torch.Tensor:
    """uint8 (B, C, H, W) to float32 ``(x / 255 - mean) / std``, per channel."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise InvalidArgumentError(
            f"normalize expects a uint8 (B, C, H, W) batch, got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    if images.shape[1] != len(norm.mean):
        raise InvalidArgumentError(
            f"batch has {images.shape[1]} channels but the normalization has {len(norm.mean)}"
        )
    # Folding 1/255 into the affine map costs one multiply-add per pixel instead of three ops.
    # On the batch's own device, so a GPU normalises the uint8 batch it was sent.
    std = torch.tensor(norm.std, dtype=torch.float32)
    scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1).to(images.device)
    shift = (-torch.tensor(norm.mean, dtype=torch.float32) / std).view(1, -1, 1, 1)
    return torch.addcmul(shift.to(images.device), images.to(torch.float32), scale)


def resize(batch: torch.Tensor, resolution: int) -> torch.Tensor:
    """Float (B, C, H, W) to ``resolution`` x ``resolution``, bilinear, for elastic resolution.

    ``align_corners=False`` and no antialiasing match what ONNX ``Resize`` exports, so a
    subnet sees the same pixels in PyTorch and after export.
    """
    _check_size("resolution", resolution)
    if batch.ndim != 4 or not batch.dtype.is_floating_point:
        raise InvalidArgumentError(
            f"resize expects a float (B, C, H, W) batch, got {batch.dtype} {tuple(batch.shape)}"
        )
    if batch.shape[-2:] == (resolution, resolution):
        return batch
    return F.interpolate(
        batch, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=False
    )


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) to ``size`` x ``size``, bilinear, rounded back to uint8.

    Antialiasing is on when shrinking (it is a no-op when enlarging), so that a dataset
    stored at a higher resolution does not alias when loaded small.
    """
    _check_size("image size", size)
    if images.shape[-2:] == (size, size):
        return images.contiguous()
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], RESIZE_CHUNK):
        chunk = images[start : start + RESIZE_CHUNK].to(torch.float32)
        scaled = F.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        out[start : start + RESIZE_CHUNK] = scaled.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _check_size(what: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise InvalidArgumentError(f"{what} must be a positive integer, got {value!r}")
