"""``.npz`` datasets: round trips, given splits, resizing, and every malformed-file case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ofa_fleet.data import load_dataset
from ofa_fleet.errors import DataError


def _arrays(count: int = 20, size: int = 8, channels: int = 3, classes: int = 4) -> dict:
    rng = np.random.default_rng(0)
    return {
        "x": rng.integers(0, 256, (count, size, size, channels), dtype=np.uint8),
        "y": np.arange(count) % classes,
    }


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_npz_round_trip_keeps_every_pixel_and_label(tmp_path: Path) -> None:
    arrays = _arrays()
    path = _save(tmp_path / "set.npz", **arrays, classes=np.array(["w", "x", "y", "z"]))
    splits = load_dataset(str(path), image_size=8, val_fraction=0.25, seed=0)
    assert splits.train.classes == ("w", "x", "y", "z")
    assert (len(splits.train), len(splits.val)) == (16, 4)  # one of five per class
    assert splits.flip is True and splits.name == str(path)
    loaded = torch.cat([splits.train.images, splits.val.images]).permute(0, 2, 3, 1).numpy()
    labels = torch.cat([splits.train.labels, splits.val.labels]).numpy()
    order = np.lexsort(loaded.reshape(len(loaded), -1).T)
    expected = np.lexsort(arrays["x"].reshape(20, -1).T)
    assert np.array_equal(loaded[order], arrays["x"][expected])
    assert np.array_equal(labels[order], arrays["y"][expected])


def test_npz_given_split_is_used_as_is(tmp_path: Path) -> None:
    train, val = _arrays(12), _arrays(4)
    path = _save(tmp_path / "s.npz", x=train["x"], y=train["y"], x_val=val["x"], y_val=val["y"])
    splits = load_dataset(str(path), image_size=8)
    assert (len(splits.train), len(splits.val)) == (12, 4)
    assert np.array_equal(splits.val.images.permute(0, 2, 3, 1).numpy(), val["x"])
    assert splits.train.classes == ("0", "1", "2", "3")


def test_npz_split_is_deterministic_by_seed(tmp_path: Path) -> None:
    path = _save(tmp_path / "s.npz", **_arrays(40))
    first, again, other = (load_dataset(str(path), 8, 0.25, seed).val for seed in (0, 0, 1))
    assert torch.equal(first.images, again.images)
    assert not torch.equal(first.images, other.images)


def test_npz_images_are_resized_and_one_channel_disables_flip(tmp_path: Path) -> None:
    path = _save(tmp_path / "grey.npz", **_arrays(size=12, channels=1))
    splits = load_dataset(str(path), image_size=16)
    assert splits.train.images.shape[1:] == (1, 16, 16)
    assert splits.flip is False


def test_a_missing_npz_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"{tmp_path / 'absent.npz'} does not exist"):
        load_dataset(str(tmp_path / "absent.npz"))


def _bad(tmp_path: Path, **arrays: np.ndarray) -> Path:
    return _save(tmp_path / "bad.npz", **arrays)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x": None}, "has no array 'x'"),
        ({"y": None}, "has no array 'y'"),
        ({"x": np.zeros((20, 8, 8, 3), np.float32)}, "'x' must be uint8"),
        ({"x": np.zeros((20, 8, 8), np.uint8)}, r"'x' must be uint8 \(N, H, W, C\)"),
        ({"x": np.zeros((20, 8, 8, 4), np.uint8)}, "C 1 or 3"),
        ({"x": np.zeros((0, 8, 8, 3), np.uint8), "y": np.zeros(0, int)}, "'x' holds no images"),
        ({"y": np.zeros(19, int)}, "'x' has 20 images but 'y' has 19"),
        ({"y": np.full(20, 0.5)}, "'y' must be a 1-D integer array"),
        ({"y": np.full((20, 1), 1)}, "'y' must be a 1-D integer array"),
        ({"y": np.arange(20) - 1}, "'y' holds a negative label"),
        ({"classes": np.array(["a", "b"])}, "'y' holds label 3, out of range for the 2 names"),
        ({"classes": np.array(["a", "a", "b", "c"])}, "names a class twice"),
        ({"classes": np.array([1, 2, 3, 4])}, "'classes' must be a non-empty 1-D string array"),
        ({"classes": np.array(["a", None, "c", "d"], dtype=object)}, "'classes' cannot be read"),
        ({"x_val": np.zeros((2, 8, 8, 3), np.uint8)}, "has 'x_val' but no 'y_val'"),
        ({"y_val": np.zeros(2, int)}, "has 'y_val' but no 'x_val'"),
        (
            {"x_val": np.zeros((2, 8, 8, 1), np.uint8), "y_val": np.zeros(2, int)},
            "training images are",
        ),
        (
            {"x_val": np.zeros((2, 8, 8, 3), np.uint8), "y_val": np.array([0, 9])},
            "'y_val' holds label 9",
        ),
    ],
)
def test_a_malformed_npz_is_reported_naming_file_and_problem(
    tmp_path: Path, change: dict, message: str
) -> None:
    arrays = {**_arrays(), "classes": np.array(["a", "b", "c", "d"]), **change}
    path = _bad(tmp_path, **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(DataError, match=message) as raised:
        load_dataset(str(path), image_size=8)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("content", [b"", b"definitely not a zip archive"])
def test_an_unreadable_npz_is_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"{path} is not a readable .npz file"):
        load_dataset(str(path))


def test_a_single_array_file_is_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "single.npz"
    with path.open("wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(DataError, match=f"{path} holds a single array"):
        load_dataset(str(path))
