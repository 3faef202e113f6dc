"""One entry point from a dataset spec (a word or a path) to checked splits.

Commands and checkpoints record the spec as given, so that the same string reloads the
same data with the same split.
"""

from __future__ import annotations

from numbers import Integral
from pathlib import Path

from ofa_fleet.data.dataset import DataSplits
from ofa_fleet.data.digits import NAME as DIGITS
from ofa_fleet.data.digits import load_digits_splits
from ofa_fleet.data.image_folder import load_image_folder_splits
from ofa_fleet.data.npz import load_npz_splits
from ofa_fleet.data.splits import check_val_fraction
from ofa_fleet.data.streaming import DataLoading
from ofa_fleet.errors import DataError, InvalidArgumentError

MIN_IMAGE_SIZE = 8  # the digits' own size; below it, strided stages have nothing left
ACCEPTED = f"{DIGITS!r}, an ImageFolder directory (<class>/<images>) or a .npz file"


def load_dataset(
    spec: str,
    image_size: int = 32,
    val_fraction: float = 0.2,
    seed: int = 0,
    loading: DataLoading | None = None,
) -> DataSplits:
    """``"digits"``, an ImageFolder directory or a ``.npz`` file, as train/held-out splits.

    ``val_fraction`` and ``seed`` only matter for sources without a held-out split of
    their own; the split is stratified and the same for the same seed. ``loading`` says
    whether an ImageFolder is decoded into memory or streamed (digits and ``.npz`` files
    are always in memory: both are read whole anyway).
    """
    if isinstance(image_size, bool) or not isinstance(image_size, Integral):
        raise InvalidArgumentError(f"image_size must be an integer, got {image_size!r}")
    if image_size < MIN_IMAGE_SIZE:
        raise InvalidArgumentError(
            f"image_size must be at least {MIN_IMAGE_SIZE} pixels, got {image_size}"
        )
    # Checked even where the source has its own held-out split, so a typo never waits.
    check_val_fraction(val_fraction)
    if spec == DIGITS:
        return load_digits_splits(image_size, val_fraction, seed)
    path = Path(spec)
    if spec and path.suffix.lower() == ".npz" and not path.is_dir():
        return load_npz_splits(path, image_size, val_fraction, seed)  # names a missing file
    if not spec or not path.exists():
        raise DataError(f"dataset {spec!r} not found: give {ACCEPTED}")
    if path.is_dir():
        return load_image_folder_splits(path, image_size, val_fraction, seed, loading)
    raise DataError(f"dataset {spec!r} is a file but not a .npz file: give {ACCEPTED}")
