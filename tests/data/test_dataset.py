"""ImageDataset, Normalization and DataSplits: the invariants every loader relies on."""

from __future__ import annotations

import json

import pytest
import torch

from ofa_fleet.data import DataSplits, ImageDataset, Normalization
from ofa_fleet.errors import InvalidArgumentError


def _dataset(count: int = 6, classes: int = 3) -> ImageDataset:
    images = torch.arange(count * 2 * 4 * 4, dtype=torch.int64).remainder(256).to(torch.uint8)
    return ImageDataset(
        images.reshape(count, 2, 4, 4),
        torch.arange(count) % classes,
        tuple(f"c{i}" for i in range(classes)),
    )


def test_dataset_makes_tensors_contiguous_and_labels_int64() -> None:
    images = torch.zeros(4, 5, 5, 3, dtype=torch.uint8).permute(0, 3, 1, 2)
    dataset = ImageDataset(images, torch.tensor([0, 1, 0, 1], dtype=torch.int32), ("a", "b"))
    assert dataset.images.is_contiguous()
    assert dataset.labels.dtype == torch.int64
    assert len(dataset) == 4


def test_subset_takes_the_given_images_in_order() -> None:
    dataset = _dataset()
    part = dataset.subset(torch.tensor([4, 1]))
    assert torch.equal(part.images, dataset.images[[4, 1]])
    assert part.labels.tolist() == [1, 1]
    assert part.classes == dataset.classes
    assert len(dataset.subset(dataset.labels == 0)) == 2


@pytest.mark.parametrize(
    ("images", "labels", "classes", "message"),
    [
        (torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), ("a",), "uint8"),
        (
            torch.zeros(2, 4, 4, dtype=torch.uint8),
            torch.zeros(2, dtype=torch.long),
            ("a",),
            "uint8",
        ),
        (
            torch.zeros(2, 1, 4, 4, dtype=torch.uint8),
            torch.zeros(3, dtype=torch.long),
            ("a",),
            "one",
        ),
        (torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2), ("a",), "integers"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 2]), ("a", "b"), "0..1"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, -1]), ("a", "b"), "0..1"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 0]), (), "class"),
    ],
)
def test_dataset_rejects_malformed_tensors(
    images: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...], message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        ImageDataset(images, labels, classes)


def test_normalization_from_images_matches_direct_statistics() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 3, 6, 7), generator=generator, dtype=torch.uint8)
    images[:, 1] //= 4  # channels with different statistics
    norm = Normalization.from_images(images)
    pixels = images.transpose(0, 1).reshape(3, -1).double() / 255.0
    assert norm.mean == pytest.approx(pixels.mean(1).tolist(), abs=1e-12)
    assert norm.std == pytest.approx(pixels.std(1, unbiased=False).tolist(), abs=1e-12)


def test_normalization_of_a_constant_channel_keeps_a_positive_std() -> None:
    norm = Normalization.from_images(torch.full((2, 1, 3, 3), 7, dtype=torch.uint8))
    assert norm.mean == pytest.approx((7 / 255,))
    assert norm.std[0] > 0


def test_normalization_round_trips_through_json() -> None:
    norm = Normalization((0.5, 0.25), (0.2, 0.3))
    again = Normalization.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert again == norm


@pytest.mark.parametrize(
    "data",
    [{"mean": [0.5]}, {"mean": [0.5], "std": [0.0]}, {"mean": [0.5], "std": [0.1, 0.2]}, {}],
)
def test_normalization_rejects_malformed_dicts(data: dict) -> None:
    with pytest.raises(InvalidArgumentError, match="std"):
        Normalization.from_dict(data)


def test_describe_is_json_and_counts_both_splits() -> None:
    train, val = _dataset(6), _dataset(3)
    splits = DataSplits(train, val, Normalization((0.5, 0.5), (0.2, 0.2)), "toy", 4, True)
    described = json.loads(json.dumps(splits.describe()))
    assert described == {
        "name": "toy",
        "classes": ["c0", "c1", "c2"],
        "image_size": 4,
        "channels": 2,
        "normalization": {"mean": [0.5, 0.5], "std": [0.2, 0.2]},
        "train_images": 6,
        "val_images": 3,
    }
