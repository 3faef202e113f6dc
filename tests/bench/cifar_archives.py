"""Tiny archive sets in CIFAR-10's layout, for running the CIFAR benches end to end."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def write_archives(folder: Path, classes: int, train: int, test: int) -> None:
    """``train.tar.gz``/``test.tar.gz`` in CIFAR-10's layout, and their SHA256SUMS."""
    rng = np.random.default_rng(0)
    sums = []
    for split, per_class in (("train", train), ("test", test)):
        archive = folder / f"{split}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for c in range(classes):
                for i in range(per_class):
                    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                    pixels[:, :, c % 3] = 40 + 60 * c  # some signal to learn
                    buffer = io.BytesIO()
                    Image.fromarray(pixels).save(buffer, format="JPEG")
                    info = tarfile.TarInfo(f"{split}/class{c}/{i:04d}.jpg")
                    info.size = buffer.tell()
                    buffer.seek(0)
                    tar.addfile(info, buffer)
        sums.append(f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  {archive.name}")
    (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n")
