"""CIFAR-10: subnets extracted from a progressively-shrunk supernet vs trained alone.

OFA's claim: a subnet cut out of the supernet, without retraining, is as accurate as the
same architecture trained on its own. This script measures the claim fairly:

1. train the supernet by progressive shrinking (``--epochs`` of the four phases, any
   recipe setting with ``--set KEY=VALUE``), or reuse the checkpoint of an earlier run
   with the same data and settings;
2. choose the archs: the largest, the smallest and ``--front`` archs spread over the
   predicted Pareto front (predicted top-1 against predicted latency on
   ``--profile``), from an accuracy predictor fitted on ``--predictor-samples``
   measured subnets;
3. extract each, recalibrate its BatchNorm, score it on the 10,000 test images;
4. train each arch alone with exactly the full phase's recipe (learning rate, cosine
   schedule, batch, weight decay, label smoothing, dropout, augmentation; at the arch's
   own resolution) for (a) the full phase's images and (b) ``--converged-epochs``
   epochs (the schedule measured long enough to converge: see the README), and score
   those; both sides' images and CPU seconds are in the table.

Scratch results are kept in ``--cache-dir`` keyed by everything that decides them, so
runs that only change the supernet's recipe (an ablation) train no scratch net twice.

Run (the full setting: about an hour on 2 cores, most of it scratch training; the small
one under 15 minutes)::

    .venv/bin/python bench/cifar10_ofa_vs_scratch.py [--train-images 10000] \
        [--epochs 6,2,2,3] [--set subnet_loss=mean ...] [--json-out results.json]
    .venv/bin/python bench/cifar10_ofa_vs_scratch.py --small

Needs ``../shared/datasets/cifar10`` (or ``--cifar-dir``); without it, says so and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import random
import sys
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from ofa_fleet.console.progress import RichTrainingProgress
from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import Checkpoint, load_checkpoint
from ofa_fleet.core.space import SearchSpace, cpu_space
from ofa_fleet.data import DataSplits, load_dataset
from ofa_fleet.hardware.profile_file import load_profile
from ofa_fleet.predictors.accuracy import fit_accuracy_predictor, sample_archs_for_fit
from ofa_fleet.predictors.accuracy_samples import measure_samples
from ofa_fleet.predictors.subnet_predictor import SubnetPredictor
from ofa_fleet.search.candidates import candidates, pareto_front
from ofa_fleet.subnet import CALIBRATION_BATCHES, materialize
from ofa_fleet.training.config import TrainConfig, parse_phase_epochs
from ofa_fleet.training.evaluate import top1_accuracy
from ofa_fleet.training.scratch import fresh_network, train_from_scratch
from ofa_fleet.training.trainer import ProgressiveTrainer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10"
DEFAULT_PROFILE = ROOT / "deploy" / "profiles" / "raspberry-pi-4.yaml"
SMALL = {"train_images": 2000, "epochs": "3,1,1,1", "front": 8, "predictor_samples": 24}
ENDS = ("largest", "smallest")
console = Console()
console.width = max(console.width, 120)  # the table's ten columns, also when piped to a file


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
    return dataclasses.replace(splits, train=splits.train.subset(order[:count]))


def parse_settings(pairs: Sequence[str], base: TrainConfig) -> TrainConfig:
    """``KEY=VALUE`` recipe settings over ``base``; values typed like the field they set."""
    values = base.to_dict()
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or key not in values:
            sys.exit(f"error: --set {pair!r}: expected KEY=VALUE with KEY one of {sorted(values)}")
        current = values[key]
        if isinstance(current, list):
            values[key] = [type(current[0])(v) for v in text.split(",")]
        elif isinstance(current, bool):
            values[key] = text.lower() in ("1", "true", "yes")
        else:
            values[key] = type(current)(text)
    return TrainConfig.from_dict(values)


def recipe_tag(config: TrainConfig, train_images: int) -> str:
    """A name for a supernet run: its data size and a digest of every setting."""
    digest = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()
    return f"cifar10-{train_images}-{'-'.join(map(str, config.epochs_per_phase))}-{digest[:10]}"


def held_out_share(splits: DataSplits, count: int) -> Any:
    """A seeded random ``count`` of the test images: the folder lists them class by class,
    so its first images are of one class only."""
    if count >= len(splits.val):
        return splits.val
    order = torch.randperm(len(splits.val), generator=torch.Generator().manual_seed(7))
    return splits.val.subset(torch.sort(order[:count]).values)


def train_supernet(splits: DataSplits, config: TrainConfig, space: SearchSpace, ckpt: Path):
    """Train, resume or reuse the supernet of these settings; its finished checkpoint.

    Each epoch's progress figures are scored on a 1,000-image share of the test split (the
    table scores on all of it): validation does not change what is trained, and on a
    slow CPU scoring 10,000 images twice an epoch costs as much as a short epoch.
    """
    splits = dataclasses.replace(splits, val=held_out_share(splits, 1000))
    if not (ckpt.exists() and load_checkpoint(ckpt).finished):
        with RichTrainingProgress() as observer:
            if ckpt.exists():
                ProgressiveTrainer.resume(splits, ckpt, observer).run()
            else:
                ProgressiveTrainer(splits, ckpt, config, space, observer).run()
    return load_checkpoint(ckpt)


def predicted_front(
    checkpoint: Checkpoint,
    splits: DataSplits,
    count: int,
    samples: int,
    profile: Path,
    seed: int,
) -> tuple[list[ArchConfig], dict[str, Any]]:
    """``count`` archs spread evenly (by latency) over the predicted Pareto front.

    The predictor's samples are scored on a 2,000-image share of the test split, so that
    fitting it costs a fraction of the bench; the table scores on all of it.
    """
    space, net = checkpoint.space, checkpoint.supernet
    started = time.process_time()
    sample_splits = dataclasses.replace(splits, val=held_out_share(splits, 2000))
    archs = sample_archs_for_fit(space, samples, seed)
    measured, _ = measure_samples(net, sample_splits, archs)
    accuracy = fit_accuracy_predictor(space, checkpoint.version, measured, seed=seed)
    predictor = SubnetPredictor(
        space, net.in_channels, net.num_classes, load_profile(profile), accuracy, checkpoint.version
    )
    rng = random.Random(seed + 1)
    pool = {str(a): a for a in (ArchConfig.sample(space, rng) for _ in range(4000))}
    front = pareto_front(candidates(predictor.predict(list(pool.values()))))
    ends = {str(ArchConfig.max(space)), str(ArchConfig.min(space))}
    inner = [c for c in front if str(c.arch) not in ends]
    chosen = [inner[round(i * (len(inner) - 1) / max(1, count - 1))] for i in range(count)]
    unique = list({str(c.arch): c.arch for c in chosen}.values()) if inner else []
    figures = {
        "samples": len(measured),
        "kendall_tau_holdout": round(accuracy.quality.kendall_tau, 3),
        "front_size": len(front),
        "cpu_seconds": round(time.process_time() - started, 1),
    }
    return unique, figures


def scratch_result(
    cache: Path,
    arch: ArchConfig,
    splits: DataSplits,
    config: TrainConfig,
    space: SearchSpace,
    epochs: int,
) -> dict[str, Any]:
    """Top-1, images and CPU seconds of ``arch`` trained alone with the full phase's recipe
    for ``epochs`` epochs; from the cache when this exact run was done before."""
    recipe = {
        "arch": str(arch),
        "train": splits.describe()["name"],
        "train_images": len(splits.train),
        "epochs": epochs,
        "lr": config.lrs[0],
        "batch_size": config.batch_size,
        "weight_decay": config.weight_decay,
        "label_smoothing": config.label_smoothing,
        "dropout": config.dropout,
        "seed": config.seed,
        "space": space.fingerprint,
    }
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    store = cache / "scratch-results.json"
    known = json.loads(store.read_text()) if store.exists() else {}
    if key in known:
        return known[key]
    net = fresh_network(
        space, arch, splits.train.channels, len(splits.train.classes), seed=config.seed
    )
    net.head.dropout.p = config.dropout  # the full phase's dropout
    trained = train_from_scratch(
        net,
        arch,
        splits,
        epochs * epoch_images(splits, config),
        lr=config.lrs[0],
        batch_size=config.batch_size,
        weight_decay=config.weight_decay,
        label_smoothing=config.label_smoothing,
        seed=config.seed,
    )
    top1 = top1_accuracy(
        trained.net, splits.val, splits.normalization, arch.resolution, channels_last=True
    )
    result = {
        "top1": top1,
        "epochs": epochs,
        "images": trained.images_seen,
        "cpu_seconds": trained.cpu_seconds,
    }
    known = json.loads(store.read_text()) if store.exists() else {}
    known[key] = result
    store.write_text(json.dumps(known, indent=1))
    return result


def epoch_images(splits: DataSplits, config: TrainConfig) -> int:
    """Images one epoch trains on: whole batches only, as in the supernet's phases."""
    return (len(splits.train) // config.batch_size) * config.batch_size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/ofa-fleet-bench"))
    parser.add_argument("--train-images", type=int, default=10_000, help="0: all 50,000")
    parser.add_argument("--epochs", default="6,2,2,3", help="epochs of the four phases")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a recipe setting"
    )
    parser.add_argument("--calibration-batches", type=int, default=CALIBRATION_BATCHES)
    parser.add_argument("--front", type=int, default=8, help="archs on the predicted front")
    parser.add_argument("--predictor-samples", type=int, default=60)
    parser.add_argument("--profile", type=Path, default=DEFAULT_PROFILE)
    parser.add_argument(
        "--archs-from", type=Path, help="the archs of an earlier run's --json-out (an ablation)"
    )
    parser.add_argument(
        "--converged-epochs", type=int, default=0, help="scratch (b) epochs (0: 4 x full)"
    )
    parser.add_argument(
        "--converged-archs",
        choices=("all", "ends"),
        default="all",
        help="train scratch (b) for every arch, or only the largest and smallest",
    )
    parser.add_argument(
        "--scratch-archs",
        choices=("all", "ends", "largest", "smallest"),
        default="all",
        help="the archs trained alone at all ((a), and (b) as --converged-archs says)",
    )
    parser.add_argument("--no-scratch", action="store_true", help="extracted side only")
    parser.add_argument("--small", action="store_true", help=f"{SMALL}: under 15 minutes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--json-out", type=Path)
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.small:  # the small setting's values, under any given explicitly
        parser.set_defaults(**SMALL)
        args = parser.parse_args(argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.cifar_dir / "train.tar.gz").is_file():
        console.print(f"skipped: CIFAR-10 archives not found in {args.cifar_dir}")
        return 0
    torch.set_num_threads(args.threads)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    root = unpack(args.cifar_dir, args.cache_dir)
    splits = subset(load_dataset(str(root), image_size=32), args.train_images, args.seed)
    epochs = parse_phase_epochs(args.epochs)
    config = parse_settings(
        args.set,
        TrainConfig(epochs_per_phase=epochs, seed=args.seed),
    )
    space = cpu_space()
    tag = recipe_tag(config, len(splits.train))
    console.print(f"data: {len(splits.train)} train, {len(splits.val)} test images; run {tag}")
    checkpoint = train_supernet(splits, config, space, args.cache_dir / f"{tag}.ckpt")
    archs = [("largest", ArchConfig.max(space)), ("smallest", ArchConfig.min(space))]
    if args.archs_from:
        # An ablation: the archs of an earlier run, whose scratch results are cached.
        earlier = json.loads(args.archs_from.read_text())
        archs = [(r["subnet"], ArchConfig.parse(r["arch"], space)) for r in earlier["subnets"]]
        front_figures: dict[str, Any] = {"archs_from": str(args.archs_from)}
    else:
        front, front_figures = predicted_front(
            checkpoint, splits, args.front, args.predictor_samples, args.profile, args.seed
        )
        archs += [(f"front {i + 1}", arch) for i, arch in enumerate(front)]
    full_epochs = config.epochs_per_phase[0]
    converged = args.converged_epochs or 4 * full_epochs
    rows = []
    for label, arch in archs:
        rows.append(
            measure_arch(label, arch, checkpoint, splits, config, args, full_epochs, converged)
        )
    figures = checkpoint.figures
    full_images = full_epochs * epoch_images(splits, config)
    result = {
        "run": tag,
        "train_images": len(splits.train),
        "test_images": len(splits.val),
        "settings": config.to_dict(),
        "calibration_images": args.calibration_batches * 64,
        "supernet": {
            "images_seen": figures.images_seen,
            "full_phase_images": full_images,
            "subnet_images": figures.subnet_images,
            "cpu_seconds": figures.cpu_seconds,
            "wall_seconds": figures.wall_seconds,
        },
        "front": front_figures,
        "scratch_epochs": {"a": full_epochs, "b": converged},
        "subnets": rows,
        "summary": summarize(rows),
    }
    report(result)
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


def measure_arch(
    label: str,
    arch: ArchConfig,
    checkpoint: Checkpoint,
    splits: DataSplits,
    config: TrainConfig,
    args: argparse.Namespace,
    full_epochs: int,
    converged: int,
) -> dict[str, Any]:
    started = time.process_time()
    sub = materialize(
        checkpoint.supernet, arch, splits, calibration_batches_count=args.calibration_batches
    )
    extracted = top1_accuracy(sub.net, splits.val, splits.normalization, arch.resolution)
    row: dict[str, Any] = {
        "subnet": label,
        "arch": str(arch),
        "macs": sub.complexity.macs,
        "extracted_top1": extracted,
        "extract_cpu_seconds": time.process_time() - started,
    }
    console.print(f"{label}: {arch} extracted top-1 {extracted:.4f}")
    if args.no_scratch or not _trains_alone(label, args.scratch_archs):
        return row
    space = checkpoint.space
    row["scratch_a"] = scratch_result(args.cache_dir, arch, splits, config, space, full_epochs)
    if args.converged_archs == "all" or label in ENDS:
        row["scratch_b"] = scratch_result(args.cache_dir, arch, splits, config, space, converged)
    return row


def _trains_alone(label: str, which: str) -> bool:
    return which == "all" or label == which or (which == "ends" and label in ENDS)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's goals as numbers: extracted minus scratch, per side, worst and mean."""
    summary: dict[str, Any] = {}
    for side in ("scratch_a", "scratch_b"):
        gaps = {r["subnet"]: r["extracted_top1"] - r[side]["top1"] for r in rows if side in r}
        if gaps:
            others = [g for name, g in gaps.items() if name != "largest"]
            summary[side] = {
                "largest_points": round(100 * gaps["largest"], 2) if "largest" in gaps else None,
                "worst_other_points": round(100 * min(others), 2) if others else None,
                "mean_points": round(100 * sum(gaps.values()) / len(gaps), 2),
            }
    return summary


def report(result: dict[str, Any]) -> None:
    supernet = result["supernet"]
    console.print(
        f"supernet: {result['train_images']} train images, "
        f"phases {result['settings']['epochs_per_phase']}, "
        f"{supernet['images_seen']:,} images seen ({supernet['full_phase_images']:,} in the "
        f"full phase), {supernet['cpu_seconds']:.0f} CPU s, {supernet['wall_seconds']:.0f} "
        f"wall s; front: {result['front']}"
    )
    epochs = result["scratch_epochs"]
    table = Table(
        title=f"CIFAR-10 test top-1: extracted (no retraining) vs trained alone "
        f"((a) {epochs['a']} epochs, the full phase's images; (b) {epochs['b']} epochs)"
    )
    columns = ("subnet", "MACs", "extracted", "(a)", "ext-(a)", "(b)", "ext-(b)", "(a)/(b) CPU s")
    for column in columns:
        table.add_column(column, justify="left" if column == "subnet" else "right")
    for row in result["subnets"]:
        cells = [row["subnet"], f"{row['macs'] / 1e6:.2f}M", _pct(row["extracted_top1"])]
        cpu = []
        for side in ("scratch_a", "scratch_b"):
            if side in row:
                top1 = row[side]["top1"]
                cells += [_pct(top1), f"{100 * (row['extracted_top1'] - top1):+.2f}"]
                cpu.append(f"{row[side]['cpu_seconds']:.0f}")
            else:
                cells += ["-", "-"]
        cells.append("/".join(cpu) or "-")
        table.add_row(*cells)
    console.print(table)
    console.print(f"summary (points, extracted minus scratch): {result['summary']}")


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%" if not math.isnan(value) else "-"


if __name__ == "__main__":
    sys.exit(main())
