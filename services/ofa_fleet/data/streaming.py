"""Image folders larger than memory: files decoded on demand, under a memory bound.

A dataset whose decoded pixels would take more than ``DataLoading.memory_mib`` (ImageNet's
1.28 million images at 224 px take 193 GB) is never decoded whole. `StreamedImages` keeps
only the file names and labels; each epoch's batches are decoded ahead by a
``torch.utils.data.DataLoader``'s worker processes, each rank decoding only its own
shard (`data.batches`). How many batches are in flight is set so their decoded pixels
stay under the bound, whatever the dataset's size. The loader processes come on top:
each is forked and shares its parent's pages until one side writes to them, so each can
come to hold up to a copy of the training process (measured 20 to 144 MiB beside a
144 MiB parent), never images.

Why a DataLoader and not Ray Data: measured on this project's CIFAR-10 JPEGs
(`bench/data_loading.py`), and it needs no Ray in the single-GPU path. Why no packed
shard format: decoding was measured far faster than training consumes images (same
bench); a format of our own would only add a conversion step for users.

File names are held in one NumPy byte array, not a list of strings: forked loader
workers would otherwise copy the list page by page as reference counts change.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ofa_fleet.data.dataset import ImageDataset
from ofa_fleet.data.decode import decode_file
from ofa_fleet.errors import DataError, InvalidArgumentError

LOADING_MODES = ("auto", "memory", "stream")
MAX_LOADER_WORKERS = 8
MAX_PREFETCH = 4  # batches per worker: more only holds memory once workers keep up
MIB = 1024 * 1024


@dataclass(frozen=True)
class DataLoading:
    """How image folders are read.

    Attributes:
        mode: ``memory`` decodes everything once, up front (fastest for small sets);
            ``stream`` decodes each batch when needed; ``auto`` streams only when the
            decoded images would exceed ``memory_mib``.
        memory_mib: the most memory decoded training images may take: the whole set in
            memory, or the batches in flight when streaming.
        workers: loader processes per training process when streaming (None: one per
            core but one, at most 8; 0: decode in the training process).
    """

    mode: str = "auto"
    memory_mib: int = 4096
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in LOADING_MODES:
            raise InvalidArgumentError(
                f"data loading must be one of {', '.join(LOADING_MODES)}, got {self.mode!r}"
            )
        if isinstance(self.memory_mib, bool) or not 1 <= self.memory_mib <= 16 * MIB:
            raise InvalidArgumentError(
                f"data memory must lie in 1..{16 * MIB} MiB, got {self.memory_mib!r}"
            )
        if self.workers is not None and not 0 <= self.workers <= 64:
            raise InvalidArgumentError(f"loader workers must lie in 0..64, got {self.workers}")

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * MIB

    def streams(self, decoded_bytes: int) -> bool:
        """Whether a set whose pixels take ``decoded_bytes`` is streamed."""
        if self.mode == "auto":
            return decoded_bytes > self.memory_bytes
        return self.mode == "stream"

    def worker_count(self) -> int:
        if self.workers is not None:
            return self.workers
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        return max(1, min(MAX_LOADER_WORKERS, cores - 1))


@dataclass(frozen=True)
class LoaderPlan:
    """Worker processes and batches each keeps ready, sized to the memory bound."""

    workers: int
    prefetch: int

    def in_flight(self) -> int:
        """Decoded batches that can exist at once: those queued plus the one in use."""
        return max(1, self.workers * self.prefetch) + 1

    @classmethod
    def fit(cls, loading: DataLoading, batch_bytes: int) -> LoaderPlan:
        """The most workers (up to the setting) and prefetch whose batches fit the bound."""
        fits = loading.memory_bytes // max(1, batch_bytes)  # whole batches within the bound
        if fits < 2:
            raise DataError(
                f"a batch of decoded images takes {batch_bytes / MIB:.1f} MiB; a data memory "
                f"of {loading.memory_mib} MiB cannot hold two (one decoding, one in use): "
                "raise --data-memory or lower --batch-size"
            )
        workers = min(loading.worker_count(), fits - 1)
        if workers == 0:
            return cls(0, 0)
        return cls(workers, min(MAX_PREFETCH, (fits - 1) // workers))


class StreamedImages:
    """An `ImageSource` over image files, decoded on demand at ``image_size`` (RGB)."""

    def __init__(
        self,
        root: Path,
        files: np.ndarray,
        labels: torch.Tensor,
        classes: tuple[str, ...],
        image_size: int,
        loading: DataLoading,
    ) -> None:
        if len(files) != len(labels):
            raise InvalidArgumentError(f"{len(files)} files but {len(labels)} labels")
        self.root = Path(root)
        self.files = files  # paths relative to root, as bytes (numpy "S" array)
        self._labels = labels.to(torch.int64)
        self._classes = tuple(classes)
        self.image_size = image_size
        self.loading = loading

    @classmethod
    def of_files(
        cls,
        root: Path,
        files: Sequence[Path],
        labels: Sequence[int],
        classes: tuple[str, ...],
        image_size: int,
        loading: DataLoading,
    ) -> StreamedImages:
        names = np.array([os.fsencode(os.path.relpath(f, root)) for f in files])
        return cls(root, names, torch.tensor(list(labels)), classes, image_size, loading)

    @property
    def labels(self) -> torch.Tensor:
        return self._labels

    @property
    def classes(self) -> tuple[str, ...]:
        return self._classes

    @property
    def channels(self) -> int:
        return 3  # decoded as RGB, whatever the file holds

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return (
            f"StreamedImages({len(self)} files under {self.root} at {self.image_size} px, "
            f"{len(self.classes)} classes)"
        )

    def batch_bytes(self, batch_size: int) -> int:
        return batch_size * self.channels * self.image_size * self.image_size

    def images_at(self, index: torch.Tensor) -> torch.Tensor:
        return _FileImages(self.root, self.files, self.image_size).__getitems__(index.tolist())

    def batches(
        self, indices: Sequence[torch.Tensor]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not indices:
            return
        plan = LoaderPlan.fit(self.loading, self.batch_bytes(max(len(i) for i in indices)))
        loader = DataLoader(
            _FileImages(self.root, self.files, self.image_size),
            batch_sampler=[index.tolist() for index in indices],
            num_workers=plan.workers,
            prefetch_factor=plan.prefetch or None,
            collate_fn=_as_batch,
            # Its own generator: the loader draws worker seeds from it, and drawing them
            # from torch's global one would shift the dropout masks of the run it feeds.
            generator=torch.Generator(),
        )
        for index, images in zip(indices, _forked(loader), strict=True):
            yield images, self._labels[index]

    def subset(self, indices: torch.Tensor) -> StreamedImages:
        chosen = indices.numpy()
        return StreamedImages(
            self.root,
            self.files[chosen],
            self._labels[indices],
            self._classes,
            self.image_size,
            self.loading,
        )

    def resident(self, limit: int, seed: int = 0) -> ImageDataset:
        """A seeded sample of at most ``limit`` images (and no more than the memory bound
        holds), decoded into memory."""
        count = min(limit, len(self), max(1, self.loading.memory_bytes // self.batch_bytes(1)))
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        index = torch.sort(order[:count]).values
        # Read in batches small enough for the loader's bound (two fit at once).
        per_batch = max(1, min(256, self.loading.memory_bytes // (2 * self.batch_bytes(1))))
        images = torch.cat([images for images, _ in self.batches(list(index.split(per_batch)))])
        return ImageDataset(images, self._labels[index], self._classes)


class _FileImages(Dataset[torch.Tensor]):
    """What a loader worker reads: whole batches of files (``__getitems__``), decoded."""

    def __init__(self, root: Path, files: np.ndarray, image_size: int) -> None:
        self.root = os.fsencode(root)
        self.files = files
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, position: int) -> torch.Tensor:
        return self.__getitems__([position])[0]

    def __getitems__(self, positions: list[int]) -> torch.Tensor:
        size = self.image_size
        batch = torch.empty((len(positions), 3, size, size), dtype=torch.uint8)
        if torch.utils.data.get_worker_info() is not None:
            # In a loader process: decode straight into the shared memory the batch travels
            # in, rather than into a private buffer copied there on sending (whose freed
            # pages the allocator kept, growing each worker by half a batch a step).
            batch.share_memory_()
        nhwc = batch.permute(0, 2, 3, 1).numpy()  # (B, H, W, C) view of the NCHW batch
        for row, position in enumerate(positions):
            path = os.fsdecode(os.path.join(self.root, self.files[position]))
            nhwc[row] = decode_file(path, size)
        return batch


def _forked(loader: DataLoader[torch.Tensor]) -> Iterator[torch.Tensor]:
    """The loader's batches, its worker processes forked with the collector's objects frozen.

    A forked worker shares its parent's memory until a page is written, and the cyclic
    garbage collector writes to every object it visits: without the freeze each worker
    slowly copies the parent's heap (measured: the two workers beside a 150 MB trainer
    held 234 MB more than with it). Frozen objects are left alone; the parent unfreezes
    at once.
    """
    gc.freeze()
    try:
        batches = iter(loader)  # the workers start here
    finally:
        gc.unfreeze()
    yield from batches


def _as_batch(images: Any) -> Any:
    return images  # `__getitems__` already made the batch
