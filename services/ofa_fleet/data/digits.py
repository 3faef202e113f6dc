"""scikit-learn's handwritten digits: a real dataset that ships inside the wheel.

1,797 grey 8x8 images with 17 levels (0..16), scaled to 0..255 and upscaled; no
download, so the demo and the tests run on a machine without network.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from ofa_fleet.data.dataset import DataSplits, ImageDataset
from ofa_fleet.data.splits import assemble_splits, stratified_split
from ofa_fleet.data.transforms import resize_uint8

NAME = "digits"


def load_digits_splits(image_size: int, val_fraction: float, seed: int) -> DataSplits:
    """Digits at ``image_size`` x ``image_size``, one channel, split by class and seed."""
    levels, labels = _digits()
    images = (levels * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)  # (N, 1, 8, 8)
    dataset = ImageDataset(
        resize_uint8(images, image_size), labels, tuple(str(d) for d in range(10))
    )
    train, val = stratified_split(dataset, val_fraction, seed)
    # A mirrored digit is another symbol (or none), so flipping would teach wrong labels.
    return assemble_splits(train, val, NAME, image_size, flip=False)


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The (N, 8, 8) levels 0..16 and the labels, as ``sklearn.datasets.load_digits`` gives
    them, read straight from the file it reads: importing scikit-learn (and SciPy with it)
    took 1.7 s of a 6 s ``ofa-fleet eval``, paid by every command and server that loads
    digits. Where the file is not at that place, scikit-learn loads it."""
    path = _digits_file()
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits  # here: other datasets do without it

        bunch = load_digits()
        return torch.from_numpy(bunch.images).to(torch.float32), torch.from_numpy(bunch.target)
    with gzip.open(path, "rt") as rows:
        table = np.loadtxt(rows, delimiter=",")
    levels = torch.from_numpy(table[:, :-1].reshape(-1, 8, 8)).to(torch.float32)
    return levels, torch.from_numpy(table[:, -1].astype(np.int64))


def _digits_file() -> Path | None:
    """Where scikit-learn's wheel keeps the digits, found without importing it."""
    spec = importlib.util.find_spec("sklearn")
    roots = spec.submodule_search_locations if spec is not None else None
    return Path(roots[0]) / "datasets" / "data" / "digits.csv.gz" if roots else None
