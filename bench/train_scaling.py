"""Data-parallel training on this machine's CPUs: one process vs 1 and 2 Ray Train workers.

What it measures, all in one run on the same data and settings (cpu space, 32 px, one
torch thread per process, a batch of ``--batch-size`` per worker):

1. **baseline**: `ProgressiveTrainer` in this process, no Ray;
2. **1 worker** and **2 workers** on a local Ray (``ray.init(num_cpus=2)``), gloo.

For each, images/s of the ``full`` phase (the largest subnet alone) and of the
``kernel`` phase (the sandwich: largest, smallest and one random subnet, with a teacher),
from the trainer's own per-epoch record (the steps only: validation, checkpoints and Ray
Train's start-up are left out, and are reported apart as each run's wall time).
Scaling efficiency = images/s of 2 workers / (2 x images/s of 1 worker): weak scaling,
each worker keeps its batch, so the global batch doubles.

It also times the all-reduce that each step adds on 2 workers: one float32 tensor the
size of the supernet's parameters (what `TorchDistributed.average_gradients` sends),
``--allreduce-repeats`` times, as the gloo overhead per step, and sets it beside the
step's own time.

Data: ``--images`` CIFAR-10 training images from ``../shared/datasets/cifar10`` (or
``--cifar-dir``); without them, scikit-learn's digits. Run (about 6 minutes on 2 idle
cores with the defaults)::

    .venv/bin/python bench/train_scaling.py [--images 4096] [--batch-size 64] [--json]
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

import torch
from rich.console import Console
from rich.table import Table

from ofa_fleet.core.checkpoint import load_checkpoint
from ofa_fleet.core.space import cpu_space
from ofa_fleet.data import DataLoading, load_dataset
from ofa_fleet.training.config import TrainConfig
from ofa_fleet.training.trainer import ProgressiveTrainer, SilentObserver

DEFAULT_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10"


class Quiet(SilentObserver):
    def worker_started(self, rank: int, pid: int, node: str) -> None:
        pass


def prepare_data(args: argparse.Namespace, cache: Path) -> tuple[str, int]:
    """A dataset spec every worker can load, and its image size: a CIFAR-10 subset as
    an ``.npz`` file, or digits."""
    if args.images and (args.cifar_dir / "train.tar.gz").is_file():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import numpy as np
        from cifar10_ofa_vs_scratch import unpack

        root = unpack(args.cifar_dir, cache)
        splits = load_dataset(str(root), image_size=32)
        generator = torch.Generator().manual_seed(0)
        pick = torch.randperm(len(splits.train), generator=generator)[: args.images]
        val = torch.randperm(len(splits.val), generator=generator)[:1000]
        path = cache / f"cifar10-{args.images}.npz"
        np.savez(
            path,
            x=splits.train.images_at(pick).permute(0, 2, 3, 1).numpy(),
            y=splits.train.labels[pick].numpy(),
            x_val=splits.val.images_at(val).permute(0, 2, 3, 1).numpy(),
            y_val=splits.val.labels[val].numpy(),
            classes=np.array(splits.train.classes),
        )
        return str(path), 32
    return "digits", 32


def phase_rates(checkpoint_path: Path) -> dict[str, float]:
    history = load_checkpoint(checkpoint_path).figures.history
    return {record["phase"]: record["images_per_s"] for record in history}


def run_baseline(data: str, size: int, config: TrainConfig, out: Path) -> dict[str, Any]:
    splits = load_dataset(data, image_size=size)
    started = time.perf_counter()
    ProgressiveTrainer(splits, out, config, cpu_space()).run()
    return {"wall_s": time.perf_counter() - started, **phase_rates(out)}


def run_workers(
    workers: int, data: str, size: int, config: TrainConfig, out: Path
) -> dict[str, Any]:
    from ofa_fleet.training.ray_train import DataSpec, WorkerPlan, train_on_ray

    spec = DataSpec(data, size, 0.2, 0, DataLoading())
    plan = WorkerPlan(workers=workers, storage=out.with_name(out.name + ".ray"))
    started = time.perf_counter()
    train_on_ray(spec, out, plan, Quiet(), config=config, space=cpu_space())
    return {"wall_s": time.perf_counter() - started, **phase_rates(out)}


def _allreduce_loop(config: dict[str, Any]) -> None:
    import ray.train
    import torch.distributed as dist

    torch.set_num_threads(1)
    flat = torch.ones(config["numel"])
    for _ in range(5):
        dist.all_reduce(flat)
    started = time.perf_counter()
    for _ in range(config["repeats"]):
        dist.all_reduce(flat)
    seconds = (time.perf_counter() - started) / config["repeats"]
    if ray.train.get_context().get_world_rank() == 0:  # a local cluster: the driver reads it
        Path(config["out"]).write_text(json.dumps({"allreduce_ms": seconds * 1000.0}))


def time_allreduce(numel: int, repeats: int, storage: Path) -> float:
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    trainer = TorchTrainer(
        _allreduce_loop,
        train_loop_config={"numel": numel, "repeats": repeats, "out": str(storage / "ar.json")},
        torch_config=TorchConfig(backend="gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=2),
        run_config=ray.train.RunConfig(storage_path=str(storage), name="allreduce"),
    )
    trainer.fit()
    return float(json.loads((storage / "ar.json").read_text())["allreduce_ms"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    torch.set_num_threads(1)
    cache = Path(tempfile.mkdtemp(prefix="train-scaling-"))
    data, size = prepare_data(args, cache)
    config = TrainConfig(
        epochs_per_phase=(1, 1, 0, 0), batch_size=args.batch_size, random_subnets=1
    )
    report: dict[str, Any] = {"data": data, "batch_per_worker": args.batch_size, "rows": {}}
    report["rows"]["baseline (no Ray)"] = run_baseline(data, size, config, cache / "base.ckpt")
    from ofa_fleet.core.supernet import OFASupernet
    from ofa_fleet.search.ray_runtime import start_ray, stop_ray

    start_ray(num_cpus=2)
    try:
        for workers in (1, 2):
            report["rows"][f"{workers} worker(s)"] = run_workers(
                workers, data, size, config, cache / f"w{workers}.ckpt"
            )
        numel = sum(p.numel() for p in OFASupernet(cpu_space(), 3, 10).parameters())
        report["allreduce"] = {
            "numel": numel,
            "ms": time_allreduce(numel, args.allreduce_repeats, cache),
        }
    finally:
        stop_ray()
    one, two = report["rows"]["1 worker(s)"], report["rows"]["2 worker(s)"]
    base = report["rows"]["baseline (no Ray)"]
    report["efficiency"] = {p: two[p] / (2 * one[p]) for p in ("full", "kernel")}
    report["one_worker_vs_baseline"] = {p: one[p] / base[p] for p in ("full", "kernel")}
    # The kernel phase's step time on 2 workers, to set the all-reduce beside.
    step_ms = 1000.0 * 2 * args.batch_size / two["kernel"]
    report["allreduce"]["share_of_kernel_step"] = report["allreduce"]["ms"] / step_ms
    return report


def print_report(report: dict[str, Any], console: Console) -> None:
    batch = report["batch_per_worker"]
    table = Table(title=f"Training throughput, {report['data']}, batch {batch} per worker")
    for column in ("run", "full img/s", "kernel img/s", "wall s (incl. start, validation)"):
        table.add_column(column, justify="right")
    for name, row in report["rows"].items():
        table.add_row(name, f"{row['full']:.0f}", f"{row['kernel']:.0f}", f"{row['wall_s']:.1f}")
    console.print(table)
    eff, rel = report["efficiency"], report["one_worker_vs_baseline"]
    console.print(
        f"scaling efficiency, 2 workers / (2 x 1 worker): full {eff['full']:.2f}, "
        f"kernel {eff['kernel']:.2f}"
    )
    console.print(f"1 worker / baseline: full {rel['full']:.2f}, kernel {rel['kernel']:.2f}")
    ar = report["allreduce"]
    console.print(
        f"gloo all-reduce of {ar['numel']:,} floats on 2 workers: {ar['ms']:.2f} ms a step, "
        f"{100 * ar['share_of_kernel_step']:.1f}% of a kernel-phase step"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=4096, help="CIFAR-10 images (0: digits)")
    parser.add_argument("--batch-size", type=int, default=64, help="per worker")
    parser.add_argument("--allreduce-repeats", type=int, default=50)
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main())
