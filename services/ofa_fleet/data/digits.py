"""scikit-learn's handwritten digits: a real dataset that ships inside the wheel.

1,797 grey 8x8 images with 17 levels (0..16), scaled to 0..255 and upscaled; no
download, so the demo and the tests run on a machine without network.
"""

from __future__ import annotations

import torch

from ofa_fleet.data.dataset import DataSplits, ImageDataset
from ofa_fleet.data.splits import assemble_splits, stratified_split
from ofa_fleet.data.transforms import resize_uint8

NAME = "digits"


def load_digits_splits(image_size: int, val_fraction: float, seed: int) -> DataSplits:
    """Digits at ``image_size`` x ``image_size``, one channel, split by class and seed."""
    # Here, not at the top: loading any other dataset must not need scikit-learn.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    levels = torch.from_numpy(bunch.images).to(torch.float32)  # (N, 8, 8), 0..16
    images = (levels * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)  # (N, 1, 8, 8)
    dataset = ImageDataset(
        resize_uint8(images, image_size),
        torch.from_numpy(bunch.target).to(torch.int64),
        tuple(str(d) for d in range(10)),
    )
    train, val = stratified_split(dataset, val_fraction, seed)
    # A mirrored digit is another symbol (or none), so flipping would teach wrong labels.
    return assemble_splits(train, val, NAME, image_size, flip=False)
