"""Image datasets, their pixel statistics, and the split a network trains on.

Training and evaluation read images through `ImageSource`: either `ImageDataset`, held in
memory, or a dataset streamed from files (`data.streaming`) when it is larger than the
memory it may take. Images stay uint8 either way (CIFAR-10's 50,000 training images take
150 MB, a quarter of float32); augmentation and normalisation happen per batch on the fly.
The dataclasses are frozen so that a split handed to a trainer cannot change under it;
they compare by identity because tensors have no single truth value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

import torch

from ofa_fleet.errors import InvalidArgumentError


class ImageSource(Protocol):
    """Labelled uint8 images that can be read by position, in batches.

    ``labels`` and ``classes`` are always in memory (a few bytes an image); the pixels may
    not be. ``batches`` reads a whole epoch's index lists, so a streamed source can decode
    ahead in worker processes; ``images_at`` reads one small batch on the spot.
    """

    @property
    def labels(self) -> torch.Tensor: ...

    @property
    def classes(self) -> tuple[str, ...]: ...

    @property
    def channels(self) -> int: ...

    def __len__(self) -> int: ...

    def images_at(self, index: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) images at the int64 positions ``index``."""
        ...

    def batches(
        self, indices: Sequence[torch.Tensor]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(uint8 images, int64 labels) for each index tensor of ``indices``, in order."""
        ...

    def subset(self, indices: torch.Tensor) -> Self:
        """The images at int64 positions ``indices``, as a source of the same kind."""
        ...

    def resident(self, limit: int, seed: int = 0) -> ImageDataset:
        """The images in memory: all, if they already are; else a seeded sample of at
        most ``limit`` (what search ships to its workers)."""
        ...


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images (uint8, N x C x H x W, contiguous) with int64 labels indexing ``classes``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        # Checked once here so that every consumer can index and batch without re-checking.
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise InvalidArgumentError(
                f"images must be a uint8 (N, C, H, W) tensor, got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.ndim != 1 or self.labels.shape[0] != self.images.shape[0]:
            raise InvalidArgumentError(
                f"labels must hold one integer per image ({self.images.shape[0]}), "
                f"got shape {tuple(self.labels.shape)}"
            )
        if self.labels.dtype.is_floating_point or self.labels.dtype == torch.bool:
            raise InvalidArgumentError(f"labels must be integers, got {self.labels.dtype}")
        classes = tuple(str(name) for name in self.classes)
        if not classes:
            raise InvalidArgumentError("a dataset needs at least one class name")
        if self.labels.numel() and (
            int(self.labels.min()) < 0 or int(self.labels.max()) >= len(classes)
        ):
            raise InvalidArgumentError(
                f"labels must lie in 0..{len(classes) - 1} for {len(classes)} classes, got "
                f"{int(self.labels.min())}..{int(self.labels.max())}"
            )
        object.__setattr__(self, "images", self.images.contiguous())
        object.__setattr__(self, "labels", self.labels.to(torch.int64).contiguous())
        object.__setattr__(self, "classes", classes)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        shape = "x".join(str(d) for d in self.images.shape[1:])
        return f"ImageDataset({len(self)} images of {shape}, {len(self.classes)} classes)"

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    def images_at(self, index: torch.Tensor) -> torch.Tensor:
        return self.images[index]

    def batches(
        self, indices: Sequence[torch.Tensor]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in indices:
            yield self.images[index], self.labels[index]

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        """The images at ``indices`` (int64 positions or a boolean mask), copied."""
        return ImageDataset(self.images[indices], self.labels[indices], self.classes)

    def resident(self, limit: int, seed: int = 0) -> ImageDataset:
        return self


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and standard deviation, in [0, 1] pixel units."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        mean = tuple(float(v) for v in self.mean)
        std = tuple(float(v) for v in self.std)
        if not mean or len(mean) != len(std):
            raise InvalidArgumentError(
                f"normalization needs one mean and one std per channel, got {len(mean)} means "
                f"and {len(std)} stds"
            )
        if not all(math.isfinite(v) for v in mean) or not all(
            math.isfinite(v) and v > 0 for v in std
        ):
            raise InvalidArgumentError(
                f"normalization must be finite with positive std, got mean {mean}, std {std}"
            )
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        try:
            mean = tuple(float(v) for v in data["mean"])
            std = tuple(float(v) for v in data["std"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"normalization must be {{'mean': [...], 'std': [...]}}, got {data!r}"
            ) from exc
        return cls(mean, std)

    @classmethod
    def from_images(cls, images: torch.Tensor) -> Normalization:
        """Exact statistics of a uint8 (N, C, H, W) tensor."""
        return cls.from_batches([images])

    @classmethod
    def from_batches(cls, batches: Iterable[torch.Tensor]) -> Normalization:
        """Exact statistics of uint8 (B, C, H, W) batches taken together.

        A 256-bin histogram per channel gives the exact mean and (population) std without
        a float copy of the pixels, which for CIFAR-10 would take 1.2 GB in float64, and
        without holding more than one batch (a streamed dataset's sample).
        """
        histogram: torch.Tensor | None = None
        for images in batches:
            if images.dtype != torch.uint8 or images.ndim != 4 or images.numel() == 0:
                raise InvalidArgumentError(
                    f"statistics need non-empty uint8 (N, C, H, W) tensors, got "
                    f"{images.dtype} {tuple(images.shape)}"
                )
            counts = torch.stack(
                [
                    torch.bincount(images[:, c].reshape(-1), minlength=256)
                    for c in range(images.shape[1])
                ]
            )
            histogram = counts if histogram is None else histogram + counts
        if histogram is None:
            raise InvalidArgumentError("statistics need at least one batch of images")
        levels = torch.arange(256, dtype=torch.float64) / 255.0
        means, stds = [], []
        for channel_counts in histogram.double():
            share = channel_counts / channel_counts.sum()
            mean = float((share * levels).sum())
            variance = float((share * (levels - mean) ** 2).sum())
            means.append(mean)
            # A constant channel (blank test images) would otherwise divide by zero.
            stds.append(max(math.sqrt(variance), 1e-3))
        return cls(tuple(means), tuple(stds))


@dataclass(frozen=True, eq=False)
class DataSplits:
    """A training split, a held-out split, and how to feed them to a network."""

    train: ImageSource
    val: ImageSource
    normalization: Normalization
    name: str
    image_size: int
    flip: bool

    def describe(self) -> dict[str, Any]:
        """What a checkpoint records about its data (JSON-able), to reload or compare it."""
        return {
            "name": self.name,
            "classes": list(self.train.classes),
            "image_size": self.image_size,
            "channels": self.train.channels,
            "normalization": self.normalization.to_dict(),
            "train_images": len(self.train),
            "val_images": len(self.val),
        }
