"""Turning loaded images into a checked train/held-out pair.

Every loader ends here, so the rules (same classes on both sides, neither side empty,
normalisation from training pixels only) hold for every source alike.
"""

from __future__ import annotations

from typing import TypeVar

import torch

from ofa_fleet.data.dataset import DataSplits, ImageDataset, ImageSource, Normalization
from ofa_fleet.errors import DataError, InvalidArgumentError

Source = TypeVar("Source", bound=ImageSource)

# Images whose pixels give a streamed set's normalisation: its per-channel mean and std
# settle to about 1e-3 long before this, and reading them all would be an epoch of decoding.
STATISTICS_SAMPLE = 10_000


def stratified_split(dataset: Source, val_fraction: float, seed: int) -> tuple[Source, Source]:
    """Deterministic split that keeps each class's share on both sides.

    Each class with two or more images gives at least one to each side, so that a small
    dataset still validates every class; each side keeps the original order.
    """
    check_val_fraction(val_fraction)
    generator = torch.Generator().manual_seed(seed)
    train_parts, val_parts = [], []
    for label in range(len(dataset.classes)):
        members = torch.nonzero(dataset.labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        count = 0
        if len(members) >= 2:
            count = min(max(1, round(len(members) * val_fraction)), len(members) - 1)
        val_parts.append(members[:count])
        train_parts.append(members[count:])
    train = torch.sort(torch.cat(train_parts)).values
    val = torch.sort(torch.cat(val_parts)).values
    return dataset.subset(train), dataset.subset(val)


def check_val_fraction(val_fraction: float) -> None:
    """A held-out share that leaves images on both sides."""
    if not 0.0 < val_fraction < 1.0:
        raise InvalidArgumentError(
            f"val_fraction must lie strictly between 0 and 1, got {val_fraction}"
        )


def assemble_splits(
    train: ImageSource, val: ImageSource, name: str, image_size: int, *, flip: bool
) -> DataSplits:
    """Check that ``train`` and ``val`` belong together and attach training statistics."""
    if train.classes != val.classes:
        only_train = sorted(set(train.classes) - set(val.classes))
        only_val = sorted(set(val.classes) - set(train.classes))
        detail = (
            f"only in training: {only_train or 'none'}; only held out: {only_val or 'none'}"
            if only_train or only_val
            else "same names in a different order"
        )
        raise DataError(
            f"{name}: the training and held-out splits have different classes ({detail})"
        )
    if len(train) == 0 or len(val) == 0:
        raise DataError(
            f"{name}: a split is empty ({len(train)} training, {len(val)} held-out images); "
            "give more images per class or a larger val_fraction"
        )
    train_shape, val_shape = _image_shape(train, image_size), _image_shape(val, image_size)
    if train_shape != val_shape:
        raise DataError(
            f"{name}: training images are {train_shape} but held-out images "
            f"are {val_shape} (channels, height, width)"
        )
    return DataSplits(train, val, _statistics(train), name, image_size, flip)


def _statistics(train: ImageSource) -> Normalization:
    """Every training pixel when held in memory; a seeded sample, a batch at a time, when
    streamed (so that the sample, too, stays within the loader's memory bound)."""
    if isinstance(train, ImageDataset):
        return Normalization.from_images(train.images)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    sample = torch.sort(order[:STATISTICS_SAMPLE]).values
    return Normalization.from_batches(images for images, _ in train.batches(sample.split(16)))


def _image_shape(source: ImageSource, image_size: int) -> tuple[int, ...]:
    if isinstance(source, ImageDataset):
        return tuple(source.images.shape[1:])
    return (source.channels, image_size, image_size)  # streamed: decoded to this size
