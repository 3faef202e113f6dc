"""The built-in digits dataset: shapes, pixel scale, determinism and stratification."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits

from ofa_fleet.data import digits, load_dataset


def test_digits_shapes_dtypes_and_metadata() -> None:
    splits = load_dataset("digits", image_size=16, val_fraction=0.2, seed=0)
    assert splits.train.images.shape[1:] == (1, 16, 16)
    assert splits.val.images.shape[1:] == (1, 16, 16)
    assert splits.train.images.dtype == torch.uint8 and splits.train.images.is_contiguous()
    assert splits.train.labels.dtype == torch.int64
    assert len(splits.train) + len(splits.val) == 1797
    assert splits.train.classes == tuple(str(d) for d in range(10))
    assert splits.name == "digits" and splits.image_size == 16
    assert splits.flip is False
    assert len(splits.normalization.mean) == 1


def test_digits_scale_0_16_to_0_255_without_losing_pixels() -> None:
    splits = load_dataset("digits", image_size=8, seed=0)
    expected = (torch.from_numpy(load_digits().images) * (255 / 16)).round().sum()
    total = splits.train.images.double().sum() + splits.val.images.double().sum()
    assert total == expected
    assert int(splits.train.images.max()) == 255 and int(splits.train.images.min()) == 0


def test_digits_upscale_bilinearly() -> None:
    small = load_dataset("digits", image_size=8, seed=0).train.images[:4].float()
    large = load_dataset("digits", image_size=32, seed=0).train.images[:4].float()
    expected = torch.nn.functional.interpolate(small, size=(32, 32), mode="bilinear")
    assert (large - expected.round()).abs().max() <= 1


def test_digits_split_is_deterministic_by_seed() -> None:
    first = load_dataset("digits", image_size=8, seed=1)
    again = load_dataset("digits", image_size=8, seed=1)
    other = load_dataset("digits", image_size=8, seed=2)
    assert torch.equal(first.val.images, again.val.images)
    assert torch.equal(first.val.labels, again.val.labels)
    assert first.normalization == again.normalization
    assert not torch.equal(first.val.images, other.val.images)


@pytest.mark.parametrize("fraction", [0.1, 0.3])
def test_digits_split_is_stratified(fraction: float) -> None:
    splits = load_dataset("digits", image_size=8, val_fraction=fraction, seed=0)
    totals = torch.bincount(torch.from_numpy(load_digits().target), minlength=10)
    held_out = torch.bincount(splits.val.labels, minlength=10)
    assert ((held_out - totals * fraction).abs() <= 0.5 + 1e-9).all()


def test_the_file_is_read_exactly_as_scikit_learn_loads_it() -> None:
    levels, labels = digits._digits()
    bunch = load_digits()
    assert digits._digits_file() is not None and digits._digits_file().is_file()
    assert torch.equal(levels, torch.from_numpy(bunch.images).to(torch.float32))
    assert torch.equal(labels, torch.from_numpy(bunch.target).to(torch.int64))


def test_where_the_file_is_not_scikit_learn_loads_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(digits, "_digits_file", lambda: tmp_path / "moved.csv.gz")
    levels, labels = digits._digits()
    assert levels.shape == (1797, 8, 8) and labels.tolist() == load_digits().target.tolist()
