"""Epoch batching and calibration batches: coverage, order and determinism."""

from __future__ import annotations

import pytest
import torch

from ofa_fleet.data import (
    DataSplits,
    ImageDataset,
    Normalization,
    calibration_batches,
    iterate_batches,
    normalize,
)
from ofa_fleet.errors import InvalidArgumentError


def _numbered(count: int) -> ImageDataset:
    """Image ``i`` is filled with ``i``, so a batch names the images it holds."""
    images = torch.arange(count, dtype=torch.uint8).reshape(count, 1, 1, 1).expand(count, 1, 2, 2)
    return ImageDataset(images, torch.arange(count) % 3, ("a", "b", "c"))


def _ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].tolist()


def _flat(batches: list[list[int]]) -> list[int]:
    return [i for batch in batches for i in batch]


def _epoch(dataset: ImageDataset, seed: int | None, drop_last: bool = False) -> list[list[int]]:
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    batches = iterate_batches(dataset, 4, generator=generator, drop_last=drop_last)
    out = []
    for images, labels in batches:
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert (labels == images[:, 0, 0, 0].long() % 3).all()  # labels travel with images
        out.append(_ids(images))
    return out


def test_unshuffled_batches_keep_dataset_order() -> None:
    assert _epoch(_numbered(10), seed=None) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_shuffled_epoch_covers_every_sample_exactly_once() -> None:
    batches = _epoch(_numbered(10), seed=0)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(_flat(batches)) == list(range(10))
    assert _flat(batches) != list(range(10))


def test_shuffling_is_deterministic_by_seed() -> None:
    dataset = _numbered(30)
    assert _epoch(dataset, seed=5) == _epoch(dataset, seed=5)
    assert _epoch(dataset, seed=5) != _epoch(dataset, seed=6)


def test_drop_last_drops_only_the_short_batch() -> None:
    assert _epoch(_numbered(10), seed=None, drop_last=True) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    batches = _epoch(_numbered(10), seed=1, drop_last=True)
    assert [len(b) for b in batches] == [4, 4]
    assert len(set(_flat(batches))) == 8


def test_a_generator_advances_so_epochs_differ() -> None:
    generator = torch.Generator().manual_seed(0)
    dataset = _numbered(20)
    first = [_ids(x) for x, _ in iterate_batches(dataset, 20, generator=generator, drop_last=False)]
    second = [
        _ids(x) for x, _ in iterate_batches(dataset, 20, generator=generator, drop_last=False)
    ]
    assert first != second


def test_iterate_batches_rejects_a_non_positive_batch_size() -> None:
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        next(iterate_batches(_numbered(3), 0, generator=None, drop_last=False))


def _splits(count: int) -> DataSplits:
    train = _numbered(count)
    norm = Normalization((0.1,), (0.2,))
    return DataSplits(train, _numbered(3), norm, "toy", 2, flip=False)


def test_calibration_batches_are_deterministic_normalized_training_images() -> None:
    splits = _splits(50)
    batches = calibration_batches(splits, 3, 8, seed=4)
    assert len(batches) == 3
    assert all(b.shape == (8, 1, 2, 2) and b.dtype == torch.float32 for b in batches)
    again = calibration_batches(splits, 3, 8, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))
    other = calibration_batches(splits, 3, 8, seed=5)
    assert not all(torch.equal(a, b) for a, b in zip(batches, other, strict=True))
    # No augmentation: each row is exactly a normalised training image.
    everything = normalize(splits.train.images, splits.normalization)
    for row in torch.cat(batches):
        assert any(torch.equal(row, image) for image in everything)


def test_calibration_batches_are_full_and_repeat_no_image_within_a_pass() -> None:
    splits = _splits(10)
    norm = splits.normalization
    batches = calibration_batches(splits, 4, 4, seed=0)
    # Undo the normalisation to read back which (constant) image each row is.
    ids = [((b[:, 0, 0, 0] * norm.std[0] + norm.mean[0]) * 255).round().long() for b in batches]
    ids = [batch.tolist() for batch in ids]
    assert [len(b) for b in ids] == [4, 4, 4, 4]
    assert len(set(ids[0] + ids[1])) == 8  # the first pass ends before a short batch
    assert all(len(set(b)) == 4 for b in ids)
    capped = calibration_batches(splits, 1, 64, seed=0)
    assert capped[0].shape[0] == 10


def test_calibration_batches_reject_non_positive_counts() -> None:
    with pytest.raises(InvalidArgumentError, match="count"):
        calibration_batches(_splits(4), 0, 2, seed=0)
