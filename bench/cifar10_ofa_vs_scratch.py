"""CIFAR-10: subnets extracted from a progressively-shrunk supernet vs trained from scratch.

OFA's claim: a subnet cut out of the supernet, without retraining, is as accurate as the
same architecture trained on its own. This script measures that claim on CIFAR-10 at
32x32 under a stated CPU budget:

1. train the supernet by progressive shrinking (full, kernel, depth, expand);
2. for three architectures (largest, smallest, one random), extract + recalibrate
   BatchNorm and evaluate on the 10,000 test images;
3. train each of the same three architectures from scratch on *as many training images
   as the supernet saw in total*, same augmentation and loss family, and evaluate.

Run (about 25 minutes on 2 cores with the defaults)::

    .venv/bin/python bench/cifar10_ofa_vs_scratch.py [--train-images 10000] \
        [--epochs full,kernel,depth,expand] [--json-out results.json]

Needs ``../shared/datasets/cifar10`` (or ``--cifar-dir``); without it, says so and exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tarfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from ofa_fleet.cli.progress import RichTrainingProgress
from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.space import cpu_space
from ofa_fleet.data import DataSplits, load_dataset
from ofa_fleet.subnet import materialize
from ofa_fleet.training.checkpoint import load_checkpoint
from ofa_fleet.training.config import TrainConfig
from ofa_fleet.training.evaluate import top1_accuracy
from ofa_fleet.training.scratch import fresh_network, train_from_scratch
from ofa_fleet.training.trainer import ProgressiveTrainer

DEFAULT_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10"
console = Console()


def unpack(cifar_dir: Path, cache: Path) -> Path:
    """Unpack the two archives once, after checking them against SHA256SUMS."""
    root = cache / "cifar10"
    if (root / "train").is_dir() and (root / "test").is_dir():
        return root
    sums = dict(
        reversed(line.split()) for line in (cifar_dir / "SHA256SUMS").read_text().splitlines()
    )
    root.mkdir(parents=True, exist_ok=True)
    for name in ("train.tar.gz", "test.tar.gz"):
        archive = cifar_dir / name
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if sums.get(name) != digest:
            sys.exit(f"error: {archive} does not match SHA256SUMS")
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    return root


def subset(splits: DataSplits, count: int, seed: int) -> DataSplits:
    if count <= 0 or count >= len(splits.train):
        return splits
    order = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(seed))
    return DataSplits(
        train=splits.train.subset(order[:count]),
        val=splits.val,
        normalization=splits.normalization,
        name=splits.name,
        image_size=splits.image_size,
        flip=splits.flip,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/ofa-fleet-bench"))
    parser.add_argument("--train-images", type=int, default=10_000, help="0: all 50,000")
    parser.add_argument("--epochs", default="6,2,2,3", help="epochs of the four phases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument(
        "--supernet-only", action="store_true", help="train (or reuse) the supernet and stop"
    )
    args = parser.parse_args()
    if not (args.cifar_dir / "train.tar.gz").is_file():
        console.print(f"skipped: CIFAR-10 archives not found in {args.cifar_dir}")
        return 0
    torch.set_num_threads(args.threads)
    root = unpack(args.cifar_dir, args.cache_dir)
    started = time.perf_counter()
    splits = subset(load_dataset(str(root), image_size=32), args.train_images, args.seed)
    console.print(
        f"data: {len(splits.train)} train, {len(splits.val)} test images "
        f"({time.perf_counter() - started:.1f} s to load)"
    )
    epochs = tuple(int(e) for e in args.epochs.split(","))
    config = TrainConfig(epochs_per_phase=epochs, seed=args.seed)  # type: ignore[arg-type]
    space = cpu_space()
    ckpt = args.cache_dir / f"cifar10-{len(splits.train)}-{'-'.join(map(str, epochs))}.ckpt"
    if not (ckpt.exists() and load_checkpoint(ckpt).finished):
        with RichTrainingProgress() as observer:
            if ckpt.exists():
                ProgressiveTrainer.resume(splits, ckpt, observer).run()
            else:
                ProgressiveTrainer(splits, ckpt, config, space, observer).run()
    if args.supernet_only:
        console.print(f"supernet checkpoint: {ckpt}")
        return 0
    checkpoint = load_checkpoint(ckpt)
    figures = checkpoint.figures
    archs = {
        "largest": ArchConfig.max(space),
        "smallest": ArchConfig.min(space),
        "random": ArchConfig.sample(space, random.Random(args.seed)),
    }
    rows = []
    for label, arch in archs.items():
        sub = materialize(checkpoint.supernet, arch, splits)
        ofa_top1 = top1_accuracy(sub.net, splits.val, splits.normalization, arch.resolution)
        console.print(f"{label}: extracted top-1 {ofa_top1:.4f}; training from scratch ...")
        net = fresh_network(space, arch, 3, len(splits.train.classes))
        scratch = train_from_scratch(net, arch, splits, figures.images_seen, seed=args.seed)
        scratch_top1 = top1_accuracy(
            scratch.net, splits.val, splits.normalization, arch.resolution, channels_last=True
        )
        rows.append(
            {
                "subnet": label,
                "arch": str(arch),
                "macs": sub.complexity.macs,
                "ofa_top1": ofa_top1,
                "scratch_top1": scratch_top1,
                "scratch_images": scratch.images_seen,
                "scratch_cpu_seconds": scratch.cpu_seconds,
            }
        )
    result = {
        "train_images": len(splits.train),
        "epochs_per_phase": list(epochs),
        "supernet_images_seen": figures.images_seen,
        "supernet_subnet_images": figures.subnet_images,
        "supernet_cpu_seconds": figures.cpu_seconds,
        "supernet_wall_seconds": figures.wall_seconds,
        "subnets": rows,
    }
    report(result)
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


def report(result: dict) -> None:
    console.print(
        f"supernet: {result['train_images']} train images, phases {result['epochs_per_phase']}, "
        f"{result['supernet_images_seen']:,} images seen "
        f"({result['supernet_subnet_images']:,} subnet-images), "
        f"{result['supernet_cpu_seconds']:.0f} CPU s, {result['supernet_wall_seconds']:.0f} wall s"
    )
    table = Table(title="CIFAR-10 test top-1: extracted (no retraining) vs from scratch")
    for column in (
        "subnet",
        "MACs",
        "OFA top-1",
        "scratch top-1",
        "OFA - scratch",
        "scratch CPU s",
    ):
        table.add_column(column, justify="left" if column == "subnet" else "right")
    for row in result["subnets"]:
        table.add_row(
            row["subnet"],
            f"{row['macs'] / 1e6:.2f}M",
            f"{row['ofa_top1'] * 100:.2f}%",
            f"{row['scratch_top1'] * 100:.2f}%",
            f"{(row['ofa_top1'] - row['scratch_top1']) * 100:+.2f} pts",
            f"{row['scratch_cpu_seconds']:.0f}",
        )
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
