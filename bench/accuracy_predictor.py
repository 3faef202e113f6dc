"""How well the accuracy predictor can rank a CIFAR-10 supernet's subnets, and why not better.

Search trusts the accuracy predictor's ranking; its Kendall tau is limited by the
predictor and by the noise in what it learns from. This script measures both on one
supernet (a checkpoint of `bench/cifar10_ofa_vs_scratch.py`, found in its cache):

1. SAMPLES. ``--samples`` seeded random subnets (the largest and smallest included),
   each extracted, BatchNorm recalibrated on ``--calibration-batches`` of 64 training
   images, and scored image by image on the test split, so that any share of it can be
   scored afterwards without running the subnet again.
2. NOISE CEILING. ``--repeat-archs`` of them are recalibrated again on other batches
   (another seed) and scored again: Kendall tau between the two measurements, and the
   noise of one measurement in points. Then the same for the share of the test split
   that the comparison bench fits its predictor on (``--fit-images``) against the whole.
   No predictor ranks measurements better than they agree with themselves.
3. PREDICTORS. 5-fold cross-validated Kendall tau and RMSE over all the samples, with
   targets scored on the whole test split and on the ``--fit-images`` share:
   - ``mlp``: the shipped predictor (`fit_network`: OFA's MLP on the arch encoding);
   - ``mlp+macs``: the same with log MACs as an extra input;
   - ``ensemble``: the mean of 5 MLPs of different seeds;
   - ``ridge``: a linear baseline on the encoding (closed form).
   And the shipped MLP's 5-fold tau with fewer samples (a learning curve).

Run (about 15 minutes on one core for 200 samples; measurements are cached)::

    .venv/bin/python bench/accuracy_predictor.py --checkpoint CKPT [--train-images 10000] \\
        [--samples 200] [--json-out predictor.json]

Needs ``../shared/datasets/cifar10`` (or ``--cifar-dir``); without it, says so and exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from scipy.stats import kendalltau

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from cifar10_ofa_vs_scratch import DEFAULT_CIFAR, subset, unpack

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import Checkpoint, load_checkpoint
from ofa_fleet.core.complexity import complexity
from ofa_fleet.data import DataSplits, iterate_batches, load_dataset, normalize, resize
from ofa_fleet.predictors.accuracy import fit_network, predict_top1, sample_archs_for_fit
from ofa_fleet.subnet import CALIBRATION_BATCHES, materialize

console = Console()
console.width = max(console.width, 110)
FOLDS = 5


def correct_mask(
    checkpoint: Checkpoint, splits: DataSplits, arch: ArchConfig, seed: int, batches: int
) -> np.ndarray:
    """Whether the extracted, recalibrated subnet gets each test image right."""
    subnet = materialize(checkpoint.supernet, arch, splits, seed, calibration_batches_count=batches)
    right = []
    with torch.no_grad():
        for images, labels in iterate_batches(splits.val, 500, generator=None, drop_last=False):
            x = resize(normalize(images, splits.normalization), arch.resolution)
            right.append((subnet.net(x).argmax(1) == labels).numpy())
    return np.concatenate(right)


class Measurements:
    """Per-image correctness of (arch, calibration seed), cached on disk as packed bits."""

    def __init__(self, path: Path, checkpoint: Checkpoint, splits: DataSplits, batches: int):
        self.path, self.checkpoint, self.splits, self.batches = path, checkpoint, splits, batches
        self.known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        self.cpu_seconds = 0.0

    def get(self, arch: ArchConfig, seed: int) -> np.ndarray:
        key = f"{arch}|{seed}|{self.batches}"
        if key not in self.known:
            started = time.process_time()
            mask = correct_mask(self.checkpoint, self.splits, arch, seed, self.batches)
            self.cpu_seconds += time.process_time() - started
            self.known[key] = np.packbits(mask).tobytes().hex()
            self.path.write_text(json.dumps(self.known))
        bits = np.frombuffer(bytes.fromhex(self.known[key]), dtype=np.uint8)
        return np.unpackbits(bits)[: len(self.splits.val)].astype(bool)


def tau(a: Sequence[float], b: Sequence[float]) -> float:
    value = kendalltau(a, b).statistic
    return float(value) if value == value else 0.0


def cross_validated(
    features: np.ndarray, targets: np.ndarray, fit: Callable[[np.ndarray, np.ndarray], Any]
) -> tuple[float, float, float]:
    """(tau over every sample's out-of-fold prediction, mean per-fold tau, RMSE points)."""
    order = np.random.default_rng(0).permutation(len(targets))
    predicted = np.zeros(len(targets))
    fold_taus = []
    for fold in range(FOLDS):
        held = order[fold::FOLDS]
        trained = np.setdiff1d(order, held)
        model = fit(features[trained], targets[trained])
        predicted[held] = model(features[held])
        fold_taus.append(tau(predicted[held], targets[held]))
    rmse = float(np.sqrt(np.mean((predicted - targets) ** 2))) * 100
    return tau(predicted, targets), float(np.mean(fold_taus)), rmse


def mlp(epochs: int, seeds: Sequence[int] = (0,)) -> Callable[[np.ndarray, np.ndarray], Any]:
    def fit(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        fitted = [fit_network(x, y.astype(np.float32), epochs, seed) for seed in seeds]
        return lambda z: np.mean([predict_top1(net, base, z) for net, base in fitted], axis=0)

    return fit


def ridge(alpha: float = 1.0) -> Callable[[np.ndarray, np.ndarray], Any]:
    def fit(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        mean = y.mean()
        a = np.c_[x, np.ones(len(x))]
        w = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ (y - mean))
        return lambda z: np.c_[z, np.ones(len(z))] @ w + mean

    return fit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/ofa-fleet-bench"))
    parser.add_argument("--train-images", type=int, default=10_000, help="as the supernet's")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--repeat-archs", type=int, default=40)
    parser.add_argument("--fit-images", type=int, default=2000, help="the comparison's share")
    parser.add_argument("--calibration-batches", type=int, default=CALIBRATION_BATCHES)
    parser.add_argument("--fit-epochs", type=int, default=1000, help="the MLPs' (as shipped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json-out", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not (args.cifar_dir / "train.tar.gz").exists():
        console.print(f"no CIFAR-10 archives in {args.cifar_dir}: nothing to measure")
        return
    torch.set_num_threads(args.threads)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    root = unpack(args.cifar_dir, args.cache_dir)
    splits = subset(load_dataset(str(root), image_size=32), args.train_images, args.seed)
    checkpoint = load_checkpoint(args.checkpoint)
    space, net = checkpoint.space, checkpoint.supernet
    net.eval()
    digest = hashlib.sha256(f"{checkpoint.version}|{args.train_images}".encode()).hexdigest()
    measurements = Measurements(
        args.cache_dir / f"predictor-samples-{digest[:12]}.json",
        checkpoint,
        splits,
        args.calibration_batches,
    )
    archs = sample_archs_for_fit(space, args.samples, args.seed)
    started = time.monotonic()
    with console.status("") as status:
        masks = []
        for done, arch in enumerate(archs, 1):
            status.update(f"measuring subnets {done}/{len(archs)}")
            masks.append(measurements.get(arch, 0))
        repeats = []
        for done, arch in enumerate(archs[: args.repeat_archs], 1):
            status.update(f"recalibrating on other batches {done}/{args.repeat_archs}")
            repeats.append(measurements.get(arch, 1))
    # The comparison bench's share (`held_out_share`): the same seeded images.
    order = torch.randperm(len(splits.val), generator=torch.Generator().manual_seed(7))
    share = torch.sort(order[: args.fit_images]).values.numpy()
    whole = np.array([m.mean() for m in masks])
    part = np.array([m[share].mean() for m in masks])
    again = np.array([m.mean() for m in repeats])
    first = whole[: len(repeats)]
    noise_points = float(np.std(again - first) / math.sqrt(2) * 100)
    report: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        "supernet_version": checkpoint.version,
        "samples": len(archs),
        "test_images": len(splits.val),
        "fit_images": args.fit_images,
        "calibration_images": args.calibration_batches * 64,
        "top1_range": [round(float(whole.min()), 4), round(float(whole.max()), 4)],
        "top1_std_points": round(float(whole.std() * 100), 3),
        "noise": {
            "recalibrated_tau": round(tau(first, again), 3),
            "recalibrated_noise_points": round(noise_points, 3),
            "share_vs_whole_tau": round(tau(part, whole), 3),
            "share_vs_whole_rmse_points": round(
                float(np.sqrt(np.mean((part - whole) ** 2)) * 100), 3
            ),
        },
    }
    encodings = np.stack([a.encode(space) for a in archs]).astype(np.float32)
    macs = np.array(
        [complexity(space, a, net.in_channels, net.num_classes).macs for a in archs], float
    )
    log_macs = (np.log(macs) - np.log(macs).mean()) / np.log(macs).std()
    variants = {
        "mlp": (encodings, mlp(args.fit_epochs)),
        "mlp+macs": (np.c_[encodings, log_macs].astype(np.float32), mlp(args.fit_epochs)),
        "ensemble": (encodings, mlp(args.fit_epochs, range(5))),
        "ridge": (encodings, ridge()),
    }
    rows = {}
    for name, (features, fit) in variants.items():
        for target_name, target in (("whole", whole), ("share", part)):
            pooled, per_fold, rmse = cross_validated(features, target, fit)
            rows[f"{name}/{target_name}"] = {
                "tau": round(pooled, 3),
                "tau_per_fold": round(per_fold, 3),
                "rmse_points": round(rmse, 3),
            }
    curve = {}
    for count in (50, 100, 150, len(archs)):
        if count <= len(archs):
            fit = mlp(args.fit_epochs)
            pooled, per_fold, _ = cross_validated(encodings[:count], whole[:count], fit)
            curve[count] = {"tau": round(pooled, 3), "tau_per_fold": round(per_fold, 3)}
    report["predictors"] = rows
    report["learning_curve"] = curve
    report["measure_cpu_seconds"] = round(measurements.cpu_seconds, 1)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    show(report)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1))


def show(report: dict[str, Any]) -> None:
    noise = report["noise"]
    console.print(
        f"{report['samples']} subnets of {report['supernet_version']}: top-1 "
        f"{report['top1_range'][0]:.2%} to {report['top1_range'][1]:.2%} "
        f"(std {report['top1_std_points']:.2f} points) on {report['test_images']} test images"
    )
    console.print(
        f"noise ceiling: recalibrated on other batches, tau {noise['recalibrated_tau']:.3f} "
        f"(one measurement +-{noise['recalibrated_noise_points']:.2f} points); "
        f"{report['fit_images']}-image share vs whole: tau {noise['share_vs_whole_tau']:.3f}, "
        f"RMSE {noise['share_vs_whole_rmse_points']:.2f} points"
    )
    table = Table(title=f"{FOLDS}-fold cross-validated, over all samples")
    for column in ("predictor / targets", "tau (pooled)", "tau (per fold)", "RMSE points"):
        table.add_column(column, justify="right")
    for name, row in report["predictors"].items():
        table.add_row(
            name, f"{row['tau']:.3f}", f"{row['tau_per_fold']:.3f}", f"{row['rmse_points']:.2f}"
        )
    console.print(table)
    curve = ", ".join(f"{n}: {r['tau']:.3f}" for n, r in report["learning_curve"].items())
    console.print(f"mlp tau by samples (whole test split): {curve}")


if __name__ == "__main__":
    main()
