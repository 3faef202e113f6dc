"""Datasets as uint8 images, in memory or streamed, and the batch-level code that feeds them.

Sources: scikit-learn's digits (built in), ImageFolder directories (streamed from their
files when larger than the memory allowed) and ``.npz`` files, all through
``load_dataset``. Augmentation, normalisation and batching are plain tensor code driven
by explicit generators, so every run is reproducible from its seed, on one process or
sharded over data-parallel ranks.
"""

from __future__ import annotations

from ofa_fleet.data.augment import augment
from ofa_fleet.data.batches import (
    WHOLE,
    Shard,
    calibration_batches,
    iterate_batches,
    steps_per_epoch,
)
from ofa_fleet.data.dataset import DataSplits, ImageDataset, ImageSource, Normalization
from ofa_fleet.data.load import load_dataset
from ofa_fleet.data.streaming import DataLoading
from ofa_fleet.data.transforms import normalize, resize

__all__ = [
    "WHOLE",
    "DataLoading",
    "DataSplits",
    "ImageDataset",
    "ImageSource",
    "Normalization",
    "Shard",
    "augment",
    "calibration_batches",
    "iterate_batches",
    "load_dataset",
    "normalize",
    "resize",
    "steps_per_epoch",
]
