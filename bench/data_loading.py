"""Reading an ImageFolder for training: decoding JPEGs against what training consumes.

Measured in one run, on the same files (``--images`` CIFAR-10 training JPEGs from
``../shared/datasets/cifar10``, and as many synthetic 224 px JPEGs like ImageNet's, at
``--size-224`` images), as images/s over one pass in batches of 64:

1. **in memory**: `load_dataset` with ``--data-loading memory`` (decode everything once,
   one forked process per core), then batches by indexing: the one-time decode rate;
2. **streamed, DataLoader**: `StreamedImages` with 1 and 2 loader processes (this
   project's streaming path);
3. **streamed, Ray Data**: ``ray.data.read_images`` resized to the same size, then
   ``iter_torch_batches`` (local Ray, 2 CPUs), start-up included and reported apart.

Beside them, the baseline those rates must beat: training's own consumption, one torch
thread, largest subnet and a progressive-shrinking step (``bench/train_scaling.py``'s
figures for 32 px; at 224 px the ImageNet preset's step, timed here). Decoding is a
bottleneck only where its rate falls below those.

Run (about 3 minutes on 2 cores)::

    .venv/bin/python bench/data_loading.py [--images 10000] [--size-224 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.space import mobilenet_v3_imagenet_space
from ofa_fleet.core.supernet import OFASupernet
from ofa_fleet.data import DataLoading, iterate_batches, load_dataset

DEFAULT_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10"
BATCH = 64


def cifar_folder(args: argparse.Namespace, cache: Path) -> Path | None:
    """``--images`` CIFAR-10 JPEGs as a flat ImageFolder (symlinks), or None."""
    if not (args.cifar_dir / "train.tar.gz").is_file():
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from cifar10_ofa_vs_scratch import unpack

    source = unpack(args.cifar_dir, cache) / "train"
    root = cache / "cifar-subset" / "train"
    classes = sorted(p for p in source.iterdir() if p.is_dir())
    per_class = args.images // len(classes)
    for folder in classes:
        (root / folder.name).mkdir(parents=True, exist_ok=True)
        for file in sorted(folder.iterdir())[:per_class]:
            (root / folder.name / file.name).symlink_to(file)
    return root


def imagenet_like_folder(count: int, cache: Path) -> Path:
    """``count`` 256 px photos-like JPEGs (smooth gradients with noise) in 10 classes."""
    root = cache / "imagenet-like" / "train"
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.4, 1.0, 256)[None, :, None]
    for index in range(count):
        folder = root / f"n{index % 10:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        base = rng.integers(40, 200, (1, 1, 3))
        pixels = np.clip(base * ramp + rng.integers(0, 60, (256, 256, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{index:06d}.JPEG", quality=90)
    return root


def one_pass(source: Any) -> int:
    seen = 0
    for _, labels in iterate_batches(source, BATCH, generator=None, drop_last=False):
        seen += len(labels)
    return seen


def rate_in_memory(root: Path, size: int) -> float:
    started = time.perf_counter()
    splits = load_dataset(str(root), size, loading=DataLoading("memory"))
    seen = one_pass(splits.train) + one_pass(splits.val)
    return seen / (time.perf_counter() - started)


def rate_streamed(root: Path, size: int, workers: int) -> float:
    splits = load_dataset(str(root), size, loading=DataLoading("stream", 4096, workers))
    started = time.perf_counter()
    seen = one_pass(splits.train)
    return seen / (time.perf_counter() - started)


def rate_ray_data(root: Path, size: int) -> dict[str, float]:
    import ray

    started = time.perf_counter()
    dataset = ray.data.read_images(str(root), size=(size, size), mode="RGB")
    seen = 0
    first: float | None = None
    for batch in dataset.iter_torch_batches(batch_size=BATCH):
        if first is None:
            first = time.perf_counter()
        seen += len(batch["image"])
    ended = time.perf_counter()
    return {
        "images_per_s": seen / (ended - (first or started)),
        "start_seconds": (first or ended) - started,
        "images": seen,
    }


def training_rate(size: int, steps: int = 3) -> dict[str, float]:
    """images/s of one torch thread training the ImageNet preset's largest subnet at
    ``size`` px, and a step of 3 subnets (the largest, smallest and a middle one)."""
    space = mobilenet_v3_imagenet_space()
    resolution = min(space.resolutions, key=lambda r: abs(r - size))
    net = OFASupernet(space, 3, 10).to(memory_format=torch.channels_last)
    x = torch.randn(16, 3, resolution, resolution).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (16,))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    largest = ArchConfig.max(space)
    largest = ArchConfig(resolution, largest.stages)
    sandwich = [largest, ArchConfig(resolution, ArchConfig.min(space).stages)]

    def step(archs: list[ArchConfig]) -> None:
        optimizer.zero_grad()
        for arch in archs:
            torch.nn.functional.cross_entropy(net(x, arch), labels).backward()
        optimizer.step()

    rates = {}
    for name, archs in (("largest", [largest]), ("two-subnet step", sandwich)):
        step(archs)
        started = time.perf_counter()
        for _ in range(steps):
            step(archs)
        rates[name] = 16 * steps / (time.perf_counter() - started)
    return rates


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    torch.set_num_threads(1)
    cache = Path(tempfile.mkdtemp(prefix="data-loading-"))
    report: dict[str, Any] = {"batch": BATCH, "sets": {}}
    sets = {}
    cifar = cifar_folder(args, cache)
    if cifar is not None:
        sets["CIFAR-10 JPEG, 32 px"] = (cifar, 32)
    sets["ImageNet-like JPEG 256 px, decoded at 224"] = (
        imagenet_like_folder(args.size_224, cache),
        224,
    )
    import logging

    import ray

    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
    )
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        for name, (root, size) in sets.items():
            row: dict[str, Any] = {"images": sum(1 for _ in root.rglob("*.*"))}
            row["in memory (decode once, all cores)"] = rate_in_memory(root.parent, size)
            for workers in (1, 2):
                row[f"streamed, DataLoader, {workers} loader(s)"] = rate_streamed(
                    root.parent, size, workers
                )
            ray_row = rate_ray_data(root, size)
            row["streamed, Ray Data"] = ray_row["images_per_s"]
            row["Ray Data start-up s"] = ray_row["start_seconds"]
            report["sets"][name] = row
    finally:
        ray.shutdown()
    report["training_224px_one_thread"] = training_rate(224)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="CIFAR-10 JPEGs")
    parser.add_argument("--size-224", type=int, default=1000, help="synthetic 224 px JPEGs")
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for name, row in report["sets"].items():
        print(f"\n{name} ({row['images']} files)")
        for key, value in row.items():
            if key != "images":
                unit = "" if key.endswith(" s") else " images/s"
                print(f"  {key:<42} {value:10.1f}{unit}")
    print("\ntraining's consumption at 224 px, one torch thread (images/s):")
    for key, value in report["training_224px_one_thread"].items():
        print(f"  {key:<42} {value:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
