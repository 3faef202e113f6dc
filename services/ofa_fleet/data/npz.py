"""``.npz`` datasets: a whole dataset in one file, for arrays a user already has in NumPy.

Keys: ``x`` (uint8, N x H x W x C with C 1 or 3) and ``y`` (integer labels); optional
``classes`` (one name per label) and ``x_val``/``y_val`` (a given held-out split, else one
is drawn as for every other source). Each problem is reported naming the file and key,
since the file was usually written by a script of the user's own.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ofa_fleet.data.dataset import DataSplits, ImageDataset
from ofa_fleet.data.splits import assemble_splits, stratified_split
from ofa_fleet.data.transforms import resize_uint8
from ofa_fleet.errors import DataError

KNOWN_KEYS = ("x", "y", "classes", "x_val", "y_val")


def load_npz_splits(path: Path, image_size: int, val_fraction: float, seed: int) -> DataSplits:
    """Train and held-out splits of the ``.npz`` file at ``path``."""
    arrays = _read(path)
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{path} has no array {key!r} (it holds {sorted(arrays) or 'none'})")
    if ("x_val" in arrays) != ("y_val" in arrays):
        given, missing = ("x_val", "y_val") if "x_val" in arrays else ("y_val", "x_val")
        raise DataError(f"{path} has {given!r} but no {missing!r}; give both or neither")
    labels: dict[str, np.ndarray] = {
        key: _labels(path, arrays[key], key) for key in ("y", "y_val") if key in arrays
    }
    classes = _classes(path, arrays, labels)
    train = _dataset(path, arrays, "x", labels["y"], classes, image_size)
    if "x_val" in arrays:
        val = _dataset(path, arrays, "x_val", labels["y_val"], classes, image_size)
    else:
        train, val = stratified_split(train, val_fraction, seed)
    # Mirrored images are only valid for natural photos, not (typically 1-channel) glyphs.
    flip = int(train.images.shape[1]) != 1
    return assemble_splits(train, val, str(path), image_size, flip=flip)


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"dataset file {path} does not exist")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable .npz file: {exc}") from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{path} holds a single array, not an .npz archive of named arrays")
    try:
        with loaded as archive:
            return {key: _array(path, archive, key) for key in archive.files if key in KNOWN_KEYS}
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable .npz file: {exc}") from exc


def _array(path: Path, archive: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        # Object arrays need pickle, which loading a data file must never run.
        hint = " (store strings as a NumPy string array)" if "pickle" in str(exc) else ""
        raise DataError(f"{path}: array {key!r} cannot be read{hint}: {exc}") from exc


def _labels(path: Path, y: np.ndarray, key: str) -> np.ndarray:
    if y.ndim != 1 or y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: {key!r} must be a 1-D integer array, got {y.dtype} {y.shape}")
    if y.size and int(y.min()) < 0:
        raise DataError(f"{path}: {key!r} holds a negative label ({int(y.min())})")
    return y.astype(np.int64)


def _classes(
    path: Path, arrays: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]
) -> tuple[str, ...]:
    highest = max((int(y.max()) for y in labels.values() if y.size), default=-1)
    if "classes" not in arrays:
        return tuple(str(i) for i in range(highest + 1))
    names = arrays["classes"]
    if names.ndim != 1 or names.dtype.kind not in "US" or names.size == 0:
        raise DataError(
            f"{path}: 'classes' must be a non-empty 1-D string array, got {names.dtype} "
            f"{names.shape}"
        )
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist())
    if len(set(classes)) != len(classes):
        raise DataError(f"{path}: 'classes' names a class twice: {list(classes)}")
    for key, y in labels.items():
        if y.size and int(y.max()) >= len(classes):
            raise DataError(
                f"{path}: {key!r} holds label {int(y.max())}, out of range for the "
                f"{len(classes)} names in 'classes'"
            )
    return classes


def _dataset(
    path: Path,
    arrays: dict[str, np.ndarray],
    key: str,
    labels: np.ndarray,
    classes: tuple[str, ...],
    size: int,
) -> ImageDataset:
    x = arrays[key]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(
            f"{path}: {key!r} must be uint8 (N, H, W, C) with C 1 or 3, got {x.dtype} {x.shape}"
        )
    if len(x) == 0:
        raise DataError(f"{path}: {key!r} holds no images")
    if len(x) != len(labels):
        label_key = "y" if key == "x" else "y_val"
        raise DataError(f"{path}: {key!r} has {len(x)} images but {label_key!r} has {len(labels)}")
    images = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
    return ImageDataset(resize_uint8(images, size), torch.from_numpy(labels), classes)
