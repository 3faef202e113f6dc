"""ImageFolder directories: the layout a user's own dataset usually comes in.

``root/<class>/<image>``, class names in sorted order, as torchvision's ImageFolder reads
it. If ``root`` holds ``train`` and ``val`` (or ``test``) folders, those are the splits;
if it holds only ``train``, that folder is split. Files may sit in sub-folders of a class
folder; hidden files and folders (``.DS_Store``, macOS ``._x.jpg`` forks) are skipped,
and so are files whose suffix is not an image's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ofa_fleet.data.dataset import DataSplits, ImageDataset, ImageSource
from ofa_fleet.data.decode import decode_images
from ofa_fleet.data.splits import assemble_splits, stratified_split
from ofa_fleet.data.streaming import DataLoading, StreamedImages
from ofa_fleet.errors import DataError

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".webp")
HELD_OUT_NAMES = ("val", "test")  # "val" wins when both exist: "test" stays untouched
CHANNELS = 3  # every image is decoded as RGB


def load_image_folder_splits(
    root: Path,
    image_size: int,
    val_fraction: float,
    seed: int,
    loading: DataLoading | None = None,
) -> DataSplits:
    """Train and held-out splits of the ImageFolder tree at ``root``.

    Held in memory, or streamed from the files when ``loading`` says so (by default when
    the decoded images would exceed its memory bound).
    """
    loading = loading or DataLoading()
    if not root.is_dir():
        raise DataError(f"dataset directory {root} does not exist")
    train_dir = root / "train"
    held_out_dir = next((root / n for n in HELD_OUT_NAMES if (root / n).is_dir()), None)
    if train_dir.is_dir() and held_out_dir is not None:
        train_classes, held_out_classes = class_folders(train_dir), class_folders(held_out_dir)
        if [d.name for d in train_classes] != [d.name for d in held_out_classes]:
            raise DataError(_mismatch(train_dir, train_classes, held_out_dir, held_out_classes))
        listings = [FolderListing.of(train_dir), FolderListing.of(held_out_dir)]
    else:
        listings = [FolderListing.of(train_dir if train_dir.is_dir() else root)]
    decoded = sum(len(listing.files) for listing in listings) * CHANNELS * image_size**2
    stream = loading.streams(decoded)
    sources = [listing.source(image_size, loading, stream) for listing in listings]
    if len(sources) == 2:
        train, val = sources
    else:
        train, val = stratified_split(sources[0], val_fraction, seed)
    return assemble_splits(train, val, str(root), image_size, flip=True)


def load_image_folder(root: Path, image_size: int) -> ImageDataset:
    """Every image under ``root/<class>/``, decoded, labelled by its class's sorted position."""
    return FolderListing.of(root).decode(image_size)


@dataclass(frozen=True)
class FolderListing:
    """The image files of one ImageFolder split and their labels, nothing decoded yet."""

    root: Path
    files: list[Path]
    labels: list[int]
    classes: tuple[str, ...]

    @classmethod
    def of(cls, root: Path) -> FolderListing:
        classes = class_folders(root)
        files: list[Path] = []
        labels: list[int] = []
        for label, folder in enumerate(classes):
            members = image_files(folder)
            if not members:
                raise DataError(
                    f"class folder {folder} holds no images (expected files ending in "
                    f"{', '.join(IMAGE_SUFFIXES)})"
                )
            files += members
            labels += [label] * len(members)
        return cls(root, files, labels, tuple(d.name for d in classes))

    def decode(self, image_size: int) -> ImageDataset:
        pixels = decode_images(self.files, image_size, description=f"loading {self.root}")
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2)  # NHWC to NCHW; made contiguous
        return ImageDataset(images, torch.tensor(self.labels), self.classes)

    def source(self, image_size: int, loading: DataLoading, stream: bool) -> ImageSource:
        if not stream:
            return self.decode(image_size)
        return StreamedImages.of_files(
            self.root, self.files, self.labels, self.classes, image_size, loading
        )


def class_folders(root: Path) -> list[Path]:
    """The class folders of ``root``, sorted by name."""
    if not root.is_dir():
        raise DataError(f"dataset directory {root} does not exist")
    folders = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    if not folders:
        raise DataError(f"{root} has no class folders (expected {root}/<class name>/<image files>)")
    return folders


def image_files(folder: Path) -> list[Path]:
    """Image files anywhere under ``folder``, in a stable (sorted) order."""
    found: list[str] = []
    for directory, subdirs, names in os.walk(folder, followlinks=True):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        found += [
            os.path.join(directory, name)
            for name in names
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)
        ]
    # Sorting strings, not Paths: six times faster for CIFAR-10's 5,000 files a class.
    return [Path(f) for f in sorted(found)]


def _mismatch(train_dir: Path, train: list[Path], held_dir: Path, held: list[Path]) -> str:
    train_names, held_names = [d.name for d in train], [d.name for d in held]
    only_train = sorted(set(train_names) - set(held_names))
    only_held = sorted(set(held_names) - set(train_names))
    return (
        f"class folders differ between {train_dir} and {held_dir}: only in {train_dir.name}: "
        f"{only_train or 'none'}; only in {held_dir.name}: {only_held or 'none'}"
    )
