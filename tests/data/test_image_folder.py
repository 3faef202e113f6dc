"""ImageFolder directories: both layouts, class order, file types, and every error case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ofa_fleet.data import load_dataset
from ofa_fleet.data.decode import decode_images
from ofa_fleet.errors import DataError


def _colour(label: int, index: int) -> tuple[int, int, int]:
    """A colour that spells an image's class and number, to check labels after loading."""
    return (40 * label + 20, 7 * index, 200)


def _write(path: Path, colour: tuple[int, int, int], mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (12, 10), colour)
    # An adaptive palette holds the colour exactly; the default web palette would dither.
    palette = Image.Palette.ADAPTIVE if mode == "P" else Image.Palette.WEB
    image.convert(mode, palette=palette).save(path)
    return path


def _folder(root: Path, classes: tuple[str, ...], per_class: int, suffix: str = ".png") -> Path:
    for label, name in enumerate(classes):
        for index in range(per_class):
            _write(root / name / f"{index:03d}{suffix}", _colour(label, index))
    return root


def _labels_match_colours(images: torch.Tensor, labels: torch.Tensor) -> bool:
    return bool((images[:, 0, 0, 0].long() == 40 * labels + 20).all())


def test_flat_folder_is_split_by_class_in_sorted_order(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data", ("dog", "ant", "cat"), per_class=5)
    splits = load_dataset(str(root), image_size=8, val_fraction=0.2, seed=0)
    # Folder order on disk is irrelevant; labels follow sorted names.
    assert splits.train.classes == ("ant", "cat", "dog")
    assert splits.train.images.shape == (12, 3, 8, 8)
    assert torch.bincount(splits.val.labels).tolist() == [1, 1, 1]
    assert splits.flip is True
    assert splits.name == str(root) and splits.image_size == 8
    for part in (splits.train, splits.val):
        # "ant" was written with label 1, "cat" with label 2, "dog" with label 0.
        written = torch.tensor([1, 2, 0])[part.labels]
        assert _labels_match_colours(part.images, written)


def test_flat_folder_split_is_deterministic_by_seed(tmp_path: Path) -> None:
    root = _folder(tmp_path, ("a", "b"), per_class=10)
    first, again, other = (load_dataset(str(root), 8, 0.3, seed).val for seed in (0, 0, 1))
    assert torch.equal(first.images, again.images)
    assert not torch.equal(first.images, other.images)


@pytest.mark.parametrize("held_out", ["val", "test"])
def test_train_and_held_out_folders_are_the_splits(tmp_path: Path, held_out: str) -> None:
    _folder(tmp_path / "train", ("a", "b"), per_class=4)
    _folder(tmp_path / held_out, ("a", "b"), per_class=2)
    splits = load_dataset(str(tmp_path), image_size=8)
    assert (len(splits.train), len(splits.val)) == (8, 4)
    assert splits.val.classes == ("a", "b")
    assert _labels_match_colours(splits.val.images, splits.val.labels)
    assert splits.val.images[:, 1, 0, 0].tolist() == [0, 7, 0, 7]


def test_val_wins_over_test_when_both_exist(tmp_path: Path) -> None:
    _folder(tmp_path / "train", ("a",), per_class=3)
    _folder(tmp_path / "val", ("a",), per_class=1)
    _folder(tmp_path / "test", ("a",), per_class=2)
    assert len(load_dataset(str(tmp_path), image_size=8).val) == 1


def test_a_lone_train_folder_is_split(tmp_path: Path) -> None:
    _folder(tmp_path / "train", ("a", "b"), per_class=5)
    splits = load_dataset(str(tmp_path), image_size=8, val_fraction=0.4)
    assert splits.train.classes == ("a", "b")
    assert (len(splits.train), len(splits.val)) == (6, 4)


def test_grayscale_and_palette_files_become_rgb(tmp_path: Path) -> None:
    _write(tmp_path / "train" / "a" / "grey.png", (90, 90, 90), mode="L")
    _write(tmp_path / "train" / "a" / "palette.png", (90, 90, 90), mode="P")
    _write(tmp_path / "val" / "a" / "rgba.png", (90, 90, 90), mode="RGBA")
    splits = load_dataset(str(tmp_path), image_size=8)
    assert splits.train.images.shape == (2, 3, 8, 8)
    assert (splits.train.images == 90).all() and (splits.val.images == 90).all()


def test_every_image_format_and_suffix_case_loads_and_other_files_are_skipped(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "a"
    for name in ("x.png", "x.JPG", "x.jpeg", "x.bmp", "x.webp", "nested/deeper/y.PNG"):
        _write(folder / name, (100, 150, 200))
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.jpg").write_bytes(b"macOS resource fork")
    _folder(tmp_path, ("b",), per_class=2)
    dataset = load_dataset(str(tmp_path), image_size=8, val_fraction=0.5)
    assert len(dataset.train) + len(dataset.val) == 8
    pixels = torch.cat([dataset.train.images, dataset.val.images])
    labels = torch.cat([dataset.train.labels, dataset.val.labels])
    # Lossy formats (JPEG, WebP) land within a few levels of the colour written.
    assert (pixels[labels == 0, 2].float() - 200).abs().max() <= 4


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=str(missing)):
        load_dataset(str(missing))


def test_a_directory_without_class_folders_is_named(tmp_path: Path) -> None:
    _write(tmp_path / "loose.png", (1, 2, 3))
    with pytest.raises(DataError, match=f"{tmp_path} has no class folders"):
        load_dataset(str(tmp_path))


def test_an_empty_class_folder_is_named(tmp_path: Path) -> None:
    _folder(tmp_path, ("a",), per_class=2)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=f"class folder {tmp_path / 'b'} holds no images"):
        load_dataset(str(tmp_path))


@pytest.mark.parametrize("content", [b"", b"not a png at all", "truncated"])
def test_a_corrupt_image_is_named(tmp_path: Path, content: bytes | str) -> None:
    _folder(tmp_path, ("a", "b"), per_class=2)
    bad = tmp_path / "b" / "broken.jpg"
    if content == "truncated":
        Image.new("RGB", (64, 64), (1, 2, 3)).save(bad, quality=95)
        bad.write_bytes(bad.read_bytes()[:300])
    else:
        bad.write_bytes(content)
    with pytest.raises(DataError, match=f"cannot read image {bad}"):
        load_dataset(str(tmp_path))


def test_differing_train_and_val_classes_are_named(tmp_path: Path) -> None:
    _folder(tmp_path / "train", ("a", "b"), per_class=2)
    _folder(tmp_path / "val", ("a", "c"), per_class=1)
    pattern = (
        f"between {tmp_path / 'train'} and {tmp_path / 'val'}: "
        r"only in train: \['b'\]; only in val: \['c'\]"
    )
    with pytest.raises(DataError, match=pattern):
        load_dataset(str(tmp_path))


def test_parallel_decoding_matches_serial_and_names_a_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ofa_fleet.data.decode.CHUNK", 3)
    files = [
        _write(tmp_path / f"{i:02d}.png", (i * 9, 255 - i * 9, i), mode="RGB") for i in range(20)
    ]
    serial = decode_images(files, 6, workers=1)
    parallel = decode_images(files, 6, workers=2)
    assert serial.shape == (20, 6, 6, 3) and serial.dtype == np.uint8
    assert np.array_equal(serial, parallel)
    assert serial[:, 0, 0, 0].tolist() == [i * 9 for i in range(20)]
    bad = tmp_path / "13.png"
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError, match=f"cannot read image {bad}"):
        decode_images(files, 6, workers=2)
