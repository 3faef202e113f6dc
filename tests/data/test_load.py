"""``load_dataset``'s dispatch and the arguments it checks before loading anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from ofa_fleet.data import load_dataset
from ofa_fleet.errors import DataError, InvalidArgumentError


@pytest.mark.parametrize("spec", ["cifar10", "", "no/such/dir"])
def test_an_unknown_spec_lists_what_is_accepted(spec: str) -> None:
    with pytest.raises(DataError, match=r"not found: give 'digits', an ImageFolder") as raised:
        load_dataset(spec)
    assert repr(spec) in str(raised.value)


def test_a_file_that_is_not_npz_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(DataError, match=f"{path}.*not a .npz file: give 'digits'"):
        load_dataset(str(path))


@pytest.mark.parametrize("size", [0, 7, -32])
def test_a_too_small_image_size_is_an_invalid_argument(size: int) -> None:
    with pytest.raises(InvalidArgumentError, match=f"image_size must be at least 8.*{size}"):
        load_dataset("digits", image_size=size)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 2.0])
def test_a_val_fraction_outside_zero_one_is_an_invalid_argument(fraction: float) -> None:
    with pytest.raises(InvalidArgumentError, match="val_fraction"):
        load_dataset("digits", val_fraction=fraction)


def test_val_fraction_is_checked_before_any_source_is_read(tmp_path: Path) -> None:
    # Even a source with its own held-out split (or none at all) gets the typo reported.
    with pytest.raises(InvalidArgumentError, match="val_fraction"):
        load_dataset(str(tmp_path / "train-and-val"), val_fraction=20)
