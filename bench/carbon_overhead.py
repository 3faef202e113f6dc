"""What the energy accounting costs training: throughput with and without metering.

`ProgressiveTrainer` meters every epoch (a phase's setup, each epoch's training and
validation, each checkpoint save) with its injected `EnergyModel`. The question here is
whether that bookkeeping slows training down; the aim is under 2%.

Three variants train the same small supernet (``digits``, ``--epochs`` per phase, same
seed, so the same work) from scratch in a fresh folder each round:

- ``no-op``: the trainer gets an `EnergyModel` whose ``meter()`` reads no clock and no
  counter (the bookkeeping around it still runs: the floor);
- ``metered``: the real `EnergyModel.from_environment()`, as training runs it;
- ``per-step``: the real model, plus a meter opened and closed around every training step
  by the observer: far more metering than the trainer does, an upper bound.

Rounds are interleaved (the order rotates each round) so that a change in machine load
hits all variants alike; the best and the median of ``--rounds`` are printed, in images
per wall second and per CPU second of this process (less sensitive to other processes'
load), with each variant's ratio to ``no-op``, and the ratios paired within a round.
A microbenchmark gives the cost of one ``meter()`` block in microseconds and what it
implies per epoch and per step: a bound that does not depend on the load at all. The
load average is printed, because on a shared machine the throughput figures drift with it.

The defaults train the full phase only (the largest subnet, 2 epochs of the ~1,400
digits training images): short epochs, so the per-epoch metering weighs the most it can.
One torch thread, because two threads contending for shared cores spin and turn load
into noise. Nine rounds, so that each variant runs first, second and third equally
often. Run (about 6 minutes on 2 cores with the defaults)::

    .venv/bin/python bench/carbon_overhead.py [--rounds 9] [--epochs 2,0,0,0] \
        [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ofa_fleet.carbon.meter import EnergyModel, Reading
from ofa_fleet.core.space import cpu_space
from ofa_fleet.data import DataSplits, load_dataset
from ofa_fleet.training.config import TrainConfig, parse_phase_epochs
from ofa_fleet.training.phases import Phase
from ofa_fleet.training.trainer import ProgressiveTrainer, SilentObserver

VARIANTS = ("no-op", "metered", "per-step")
AIM = 0.02
console = Console(stderr=True)


class NoMeter(EnergyModel):
    """An energy model that measures nothing: the trainer's bookkeeping without clocks."""

    @contextmanager
    def meter(self, scope: Literal["process", "thread"] = "process") -> Iterator[Reading]:
        yield Reading()


class StepMeter(SilentObserver):
    """Keeps a meter open around every training step: one block per step, end to end."""

    def __init__(self, model: EnergyModel) -> None:
        self.model = model
        self.block: AbstractContextManager[Reading] | None = None
        self.blocks = 0

    def _restart(self) -> None:
        self.close()
        self.block = self.model.meter()
        self.block.__enter__()

    def close(self) -> None:
        if self.block is not None:
            self.block.__exit__(None, None, None)
            self.blocks += 1
            self.block = None

    def phase_started(self, phase: Phase, epoch: int, steps_per_epoch: int) -> None:
        self._restart()

    def step_done(self, loss: float) -> None:
        self._restart()

    def epoch_done(self, record: dict[str, Any]) -> None:
        self._restart()


@dataclass(frozen=True)
class Run:
    images: int
    wall_seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.images / self.wall_seconds

    @property
    def per_cpu_second(self) -> float:
        return self.images / self.cpu_seconds


def train_once(splits: DataSplits, config: TrainConfig, variant: str) -> Run:
    """One training run of ``variant`` in a fresh folder; construction is not timed."""
    real = EnergyModel.from_environment()
    model = NoMeter(real.power, real.grid) if variant == "no-op" else real
    observer = StepMeter(real) if variant == "per-step" else SilentObserver()
    with tempfile.TemporaryDirectory(prefix="carbon-overhead-") as folder:
        trainer = ProgressiveTrainer(
            splits, Path(folder) / "supernet.ckpt", config, cpu_space(), observer, model
        )
        wall, cpu = time.perf_counter(), time.process_time()
        result = trainer.run()
        if isinstance(observer, StepMeter):
            observer.close()
        return Run(
            result.figures.images_seen,
            time.perf_counter() - wall,
            time.process_time() - cpu,
        )


def meter_microseconds(model: EnergyModel, blocks: int) -> float:
    """Mean cost of one empty ``meter()`` block, in microseconds of wall time."""
    started = time.perf_counter()
    for _ in range(blocks):
        with model.meter():
            pass
    return (time.perf_counter() - started) / blocks * 1e6


def interleaved(
    rounds: int, train: Callable[[str], Run], on_done: Callable[[], None]
) -> dict[str, list[Run]]:
    """Every variant once a round, the order rotated each round."""
    runs: dict[str, list[Run]] = {v: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for variant in order:
            runs[variant].append(train(variant))
            on_done()
    return runs


def summarize(runs: dict[str, list[Run]]) -> dict[str, Any]:
    """Best and median rates per variant, and their ratio to the no-op variant."""
    rows: dict[str, Any] = {}
    for variant, items in runs.items():
        rates = [r.per_second for r in items]
        cpu_rates = [r.per_cpu_second for r in items]
        rows[variant] = {
            "best_images_per_s": max(rates),
            "median_images_per_s": statistics.median(rates),
            "best_images_per_cpu_s": max(cpu_rates),
            "median_images_per_cpu_s": statistics.median(cpu_rates),
            "images_per_run": items[0].images,
            "runs": [r.__dict__ for r in items],
        }
    base = rows["no-op"]
    for row in rows.values():
        for key in (
            "best_images_per_s",
            "median_images_per_s",
            "best_images_per_cpu_s",
            "median_images_per_cpu_s",
        ):
            row[f"{key}_ratio"] = row[key] / base[key]
    # Paired: each round's rate over the no-op rate of the same round, so that a load
    # change between rounds cancels; their spread shows how far load alone moves it.
    for variant, items in runs.items():
        paired = [r.per_second / b.per_second for r, b in zip(items, runs["no-op"], strict=True)]
        rows[variant]["paired_ratio_median"] = statistics.median(paired)
        rows[variant]["paired_ratio_min"] = min(paired)
        rows[variant]["paired_ratio_max"] = max(paired)
    no_op = [r.per_second for r in runs["no-op"]]
    rows["no-op"]["spread"] = (max(no_op) - min(no_op)) / statistics.median(no_op)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--epochs", default="2,0,0,0", help="epochs of the four phases")
    parser.add_argument("--train-images", type=int, default=0, help="0: all of digits' split")
    parser.add_argument("--meter-blocks", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    torch.set_num_threads(args.threads)
    splits = load_dataset("digits", image_size=32, seed=args.seed)
    if 0 < args.train_images < len(splits.train):
        order = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(0))
        splits = DataSplits(
            train=splits.train.subset(order[: args.train_images]),
            val=splits.val,
            normalization=splits.normalization,
            name=splits.name,
            image_size=splits.image_size,
            flip=splits.flip,
        )
    epochs = parse_phase_epochs(args.epochs)
    config = TrainConfig(epochs_per_phase=epochs, seed=args.seed)
    model = EnergyModel.from_environment()
    load_before = [round(v, 2) for v in os.getloadavg()]
    micro = meter_microseconds(model, args.meter_blocks)
    train_once(splits, config, "no-op")  # warm-up: oneDNN kernels, allocator, imports
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("interleaved runs", total=args.rounds * len(VARIANTS))
        runs = interleaved(
            args.rounds,
            lambda variant: train_once(splits, config, variant),
            lambda: progress.advance(task),
        )
    rows = summarize(runs)
    epochs_run = sum(epochs)
    steps_per_epoch = len(splits.train) // config.batch_size
    epoch_seconds = statistics.median(r.wall_seconds for r in runs["no-op"]) / epochs_run
    step_seconds = epoch_seconds / max(1, steps_per_epoch)
    result = {
        "energy_model": model.describe(),
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "train_images": len(splits.train),
        "epochs_per_phase": list(epochs),
        "rounds": args.rounds,
        "variants": rows,
        "meter_block_microseconds": micro,
        # The trainer opens 3 blocks an epoch (plus one a phase); per-step adds one a step.
        "implied_overhead_per_epoch_metering": 3 * micro * 1e-6 / epoch_seconds,
        "implied_overhead_per_step_metering": micro * 1e-6 / step_seconds,
        "aim": AIM,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return 0


def report(result: dict[str, Any]) -> None:
    out = Console()
    if not out.is_terminal:  # a log file: wide enough for the table
        out = Console(width=120)
    out.print(
        f"energy model {result['energy_model']}; {result['threads']} torch threads on "
        f"{result['cpu_count']} logical cores; load average before "
        f"{result['load_average_before']}, after {result['load_average_after']}"
    )
    out.print(
        f"digits: {result['train_images']} train images, phases "
        f"{result['epochs_per_phase']}, {result['rounds']} interleaved rounds"
    )
    table = Table(title="Training throughput with and without energy metering")
    for column in (
        "variant",
        "best img/s",
        "median img/s",
        "median img/CPU s",
        "best vs no-op",
        "median vs no-op",
        "median img/CPU s vs no-op",
    ):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for variant, row in result["variants"].items():
        table.add_row(
            variant,
            f"{row['best_images_per_s']:.1f}",
            f"{row['median_images_per_s']:.1f}",
            f"{row['median_images_per_cpu_s']:.1f}",
            f"{row['best_images_per_s_ratio']:.4f}",
            f"{row['median_images_per_s_ratio']:.4f}",
            f"{row['median_images_per_cpu_s_ratio']:.4f}",
        )
    out.print(table)
    variants = result["variants"]
    out.print(
        "paired per round (variant / no-op of the same round), median (min to max): "
        + "; ".join(
            f"{name} {row['paired_ratio_median']:.4f} "
            f"({row['paired_ratio_min']:.4f} to {row['paired_ratio_max']:.4f})"
            for name, row in variants.items()
            if name != "no-op"
        )
        + f"; no-op runs spread {variants['no-op']['spread'] * 100:.1f}% among themselves"
    )
    out.print(
        f"one meter() block: {result['meter_block_microseconds']:.2f} us; implied overhead "
        f"of per-epoch metering {result['implied_overhead_per_epoch_metering'] * 100:.5f}%, "
        f"of per-step metering {result['implied_overhead_per_step_metering'] * 100:.4f}%"
    )
    overhead = 1.0 - variants["metered"]["paired_ratio_median"]
    bound = result["implied_overhead_per_epoch_metering"]
    verdict = "within" if max(overhead, bound) < result["aim"] else "NOT within"
    direction = "slower" if overhead >= 0 else "faster"
    out.print(
        f"metered vs no-op, paired median of {result['rounds']} rounds: "
        f"{abs(overhead) * 100:.2f}% {direction}; the meter's own cost: "
        f"{bound * 100:.5f}% ({verdict} the {result['aim'] * 100:.0f}% aim). Throughput "
        "differences inside the no-op spread are the load, not the metering"
    )


if __name__ == "__main__":
    sys.exit(main())
