"""Datasets held in memory as uint8 tensors, and the batch-level code that feeds them.

Sources: scikit-learn's digits (built in), ImageFolder directories and ``.npz`` files,
all through ``load_dataset``. Augmentation, normalisation and batching are plain tensor
code driven by explicit generators, so every run is reproducible from its seed.
"""

from __future__ import annotations

from ofa_fleet.data.augment import augment
from ofa_fleet.data.batches import calibration_batches, iterate_batches
from ofa_fleet.data.dataset import DataSplits, ImageDataset, Normalization
from ofa_fleet.data.load import load_dataset
from ofa_fleet.data.transforms import normalize, resize

__all__ = [
    "DataSplits",
    "ImageDataset",
    "Normalization",
    "augment",
    "calibration_batches",
    "iterate_batches",
    "load_dataset",
    "normalize",
    "resize",
]
