"""`ofa-fleet demo`: the main job on built-in defaults, end to end on one machine.

Trains a supernet on the built-in ``digits`` data (or reuses a finished checkpoint), then
carves several subnets out of it without retraining, exports each as verified ONNX and
shows what each costs and how accurate it is, with the latency this machine's own
latency table predicted for it next to the latency measured.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from ofa_fleet.cli.core_commands import write_atomically
from ofa_fleet.cli.output import stderr_console

# torch, scikit-learn and onnx load in the handlers that use them, so that building the
# parser (and running the light commands) does not pay for them.
if TYPE_CHECKING:
    from ofa_fleet.predictors.latency_table import LatencyTable
    from ofa_fleet.training.checkpoint import Checkpoint


def add_command(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="train on digits, carve subnets, export them as ONNX")
    demo.add_argument("--workdir", type=Path, default=Path("runs/demo"))
    demo.add_argument("--epochs-per-phase", type=int, help="default: the built-in schedule")
    demo.add_argument("--random-subnets", type=int, default=2)
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> dict[str, Any] | None:
    from ofa_fleet.core.arch import ArchConfig
    from ofa_fleet.hardware.local_machine import local_profile
    from ofa_fleet.predictors.subnet_predictor import SubnetPredictor
    from ofa_fleet.predictors.timing import InterleavedTimer
    from ofa_fleet.subnet import export_subnet, materialize
    from ofa_fleet.training.checkpoint import load_checkpoint
    from ofa_fleet.training.checkpoint_data import load_checkpoint_data
    from ofa_fleet.training.evaluate import top1_accuracy

    checkpoint_path = args.workdir / "supernet.ckpt"
    ensure_trained(checkpoint_path, args.epochs_per_phase)
    checkpoint = load_checkpoint(checkpoint_path)
    splits = load_checkpoint_data(checkpoint)
    rng = random.Random(0)
    archs = [("max", ArchConfig.max(checkpoint.space)), ("min", ArchConfig.min(checkpoint.space))]
    archs += [
        (f"random-{i + 1}", ArchConfig.sample(checkpoint.space, rng))
        for i in range(args.random_subnets)
    ]
    predictor = SubnetPredictor(
        checkpoint.space,
        checkpoint.supernet.in_channels,
        checkpoint.supernet.num_classes,
        local_profile(1, ensure_latency_table(args.workdir / "latency-table.json", checkpoint)),
    )
    predictions = predictor.predict([arch for _, arch in archs])
    rows = []
    timer = InterleavedTimer(threads=1)
    for i, (label, arch) in enumerate(archs):
        subnet = materialize(checkpoint.supernet, arch, splits)
        top1 = top1_accuracy(subnet.net, splits.val, splits.normalization, arch.resolution)
        exported = export_subnet(checkpoint, subnet, splits)
        out = args.workdir / f"{label}.onnx"
        write_atomically(out, exported.onnx_bytes)
        timer.add(
            exported.onnx_bytes,
            (1, checkpoint.supernet.in_channels, arch.resolution, arch.resolution),
        )
        rows.append(
            {
                "subnet": label,
                "arch": str(arch),
                "top1": round(top1, 4),
                "macs": subnet.complexity.macs,
                "params": subnet.complexity.params,
                "onnx_bytes": len(exported.onnx_bytes),
                "predicted_latency_ms": round(float(predictions.latency_ms[i]), 3),
                "peak_memory_bytes": int(predictions.peak_memory_bytes[i]),
                "sha256": exported.sha256,
                "file": str(out),
            }
        )
    # Timed together in interleaved rounds, as the latency table was (see `timing`).
    for row, latency in zip(rows, timer.measure(), strict=True):
        row["latency_ms"] = round(latency, 3)
    result = {
        "checkpoint": str(checkpoint_path),
        "supernet_version": checkpoint.version,
        "subnets": rows,
    }
    if args.json:
        return result
    print_table(result)
    return None


def ensure_trained(path: Path, epochs_per_phase: int | None) -> None:
    """Train, resume an interrupted run, or do nothing if a finished checkpoint exists."""
    from ofa_fleet.cli.progress import RichTrainingProgress
    from ofa_fleet.core.space import cpu_space
    from ofa_fleet.data import load_dataset
    from ofa_fleet.training.checkpoint import load_checkpoint
    from ofa_fleet.training.checkpoint_data import VAL_FRACTION, load_checkpoint_data
    from ofa_fleet.training.config import TrainConfig
    from ofa_fleet.training.trainer import ProgressiveTrainer

    if path.exists():
        checkpoint = load_checkpoint(path)
        if checkpoint.finished:
            return
        splits = load_checkpoint_data(checkpoint)
        with RichTrainingProgress() as observer:
            ProgressiveTrainer.resume(splits, path, observer).run()
        return
    config = TrainConfig()
    if epochs_per_phase:
        config = config.with_epochs(epochs_per_phase)
    splits = load_dataset("digits", image_size=32, val_fraction=VAL_FRACTION, seed=config.seed)
    with RichTrainingProgress() as observer:
        ProgressiveTrainer(splits, path, config, cpu_space(), observer).run()


def ensure_latency_table(path: Path, checkpoint: Checkpoint) -> LatencyTable:
    """This machine's latency table for the checkpoint's space (measured once, ~10 s)."""
    from ofa_fleet.hardware.profile_file import load_latency_table
    from ofa_fleet.predictors.device_profiling import profile_device

    if path.exists():
        table = load_latency_table(path)
        if table.space_fingerprint == checkpoint.space.fingerprint and table.threads == 1:
            return table
    net = checkpoint.supernet
    with stderr_console.status("profiling this machine's latency table ..."):
        table = profile_device(checkpoint.space, net.in_channels, net.num_classes, threads=1)
    write_atomically(path, json.dumps(table.to_dict(), indent=1).encode())
    return table


def print_table(result: dict[str, Any]) -> None:
    table = Table(title=f"Subnets of supernet {result['supernet_version']} (no retraining)")
    columns = ("subnet", "top-1", "MACs", "params", "ONNX KiB", "peak KiB", "ms", "predicted ms")
    for column in columns:
        table.add_column(column, justify="left" if column == "subnet" else "right")
    table.add_column("arch", overflow="fold", min_width=24)
    for row in result["subnets"]:
        table.add_row(
            row["subnet"],
            f"{row['top1'] * 100:.1f}%",
            f"{row['macs'] / 1e6:.2f}M",
            f"{row['params'] / 1e3:.0f}K",
            f"{row['onnx_bytes'] / 1024:.0f}",
            f"{row['peak_memory_bytes'] / 1024:.0f}",
            f"{row['latency_ms']:.3f}",
            f"{row['predicted_latency_ms']:.3f}",
            row["arch"],
        )
    Console().print(table)
