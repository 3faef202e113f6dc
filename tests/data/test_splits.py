"""Stratified splitting and the checks that pair a training split with a held-out one."""

from __future__ import annotations

import pytest
import torch

from ofa_fleet.data import ImageDataset
from ofa_fleet.data.splits import assemble_splits, stratified_split
from ofa_fleet.errors import DataError, InvalidArgumentError


def _numbered(labels: list[int], classes: int) -> ImageDataset:
    """Images whose two pixels spell their index, so a split can be traced back."""
    index = torch.arange(len(labels))
    pixels = torch.stack([index // 256, index % 256], dim=1).to(torch.uint8)
    names = tuple(str(i) for i in range(classes))
    return ImageDataset(pixels.reshape(-1, 1, 1, 2), torch.tensor(labels), names)


def _ids(dataset: ImageDataset) -> list[int]:
    pixels = dataset.images.reshape(-1, 2).long()
    return (pixels[:, 0] * 256 + pixels[:, 1]).tolist()


def test_split_partitions_the_dataset_and_keeps_class_shares() -> None:
    labels = [0] * 50 + [1] * 30 + [2] * 20
    train, val = stratified_split(_numbered(labels, 3), 0.2, seed=0)
    assert sorted(_ids(train) + _ids(val)) == list(range(100))
    assert _ids(train) == sorted(_ids(train)) and _ids(val) == sorted(_ids(val))
    assert torch.bincount(val.labels).tolist() == [10, 6, 4]


def test_split_is_deterministic_by_seed() -> None:
    dataset = _numbered([0] * 40 + [1] * 40, 2)
    first, again, other = (stratified_split(dataset, 0.25, seed)[1] for seed in (3, 3, 4))
    assert _ids(first) == _ids(again)
    assert _ids(first) != _ids(other)


def test_split_gives_every_class_of_two_or_more_a_held_out_image() -> None:
    _, val = stratified_split(_numbered([0, 0, 1, 1, 1, 2], 3), 0.01, seed=0)
    assert sorted(val.labels.tolist()) == [0, 1]  # class 2 has one image: it trains
    _, val = stratified_split(_numbered([0, 0, 1, 1], 2), 0.99, seed=0)
    assert sorted(val.labels.tolist()) == [0, 1]  # and every class keeps one to train on


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_split_rejects_fractions_outside_zero_one(fraction: float) -> None:
    with pytest.raises(InvalidArgumentError, match="val_fraction"):
        stratified_split(_numbered([0, 0], 1), fraction, seed=0)


def test_assemble_computes_normalization_from_training_pixels_only() -> None:
    train = ImageDataset(
        torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1]), ("a", "b")
    )
    val = ImageDataset(
        torch.full((1, 1, 2, 2), 255, dtype=torch.uint8), torch.tensor([0]), ("a", "b")
    )
    splits = assemble_splits(train, val, "toy", 2, flip=True)
    assert splits.normalization.mean == (0.0,)


def test_assemble_rejects_differing_classes_naming_them() -> None:
    images = torch.zeros(1, 1, 2, 2, dtype=torch.uint8)
    train = ImageDataset(images, torch.tensor([0]), ("cat", "dog"))
    val = ImageDataset(images, torch.tensor([0]), ("cat", "emu"))
    with pytest.raises(DataError, match=r"toy.*only in training: \['dog'\].*\['emu'\]"):
        assemble_splits(train, val, "toy", 2, flip=True)
    reordered = ImageDataset(images, torch.tensor([0]), ("dog", "cat"))
    with pytest.raises(DataError, match="different order"):
        assemble_splits(train, reordered, "toy", 2, flip=True)


def test_assemble_rejects_an_empty_split() -> None:
    train = ImageDataset(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), torch.tensor([0]), ("a",))
    empty = train.subset(torch.tensor([], dtype=torch.long))
    with pytest.raises(DataError, match="empty"):
        assemble_splits(train, empty, "toy", 2, flip=True)


def test_assemble_rejects_differing_image_shapes() -> None:
    train = ImageDataset(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), torch.tensor([0]), ("a",))
    val = ImageDataset(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), torch.tensor([0]), ("a",))
    with pytest.raises(DataError, match="channels"):
        assemble_splits(train, val, "toy", 2, flip=True)
