"""CIFAR-10: what K specialized networks cost, once-for-all vs each trained from scratch.

The carbon ledger's counterfactual needs a measured figure: the energy of training one
specialized network on its own to the accuracy OFA delivered for it. This script
measures both sides on the same data, machine and energy model, every step inside an
`EnergyModel.meter()` block (CPU seconds of this process, joules from the power model,
grams of CO2e from the grid):

OFA (fixed cost, paid once)
  1. the supernet, trained by progressive shrinking (full, kernel, depth, expand);
  2. what search needs: an accuracy predictor is fitted on about ``--predictor-target``
     measured subnets (extract, recalibrate BatchNorm, evaluate). ``--predictor-samples``
     of them are measured and the MLP fitted on those; the sample cost is extrapolated
     linearly to the target count.

OFA (per profile)
  3. specialization, as `Specializer.specialize` does it but in this process (no Ray):
     evolution over predicted figures, the best ``--top-k`` re-ranked by measured top-1,
     the winner extracted, BatchNorm recalibrated, exported to ONNX and verified.
     ``--budget-fractions`` gives the measured profiles: a Raspberry Pi 4 profile with
     latency budgets at those fractions of the way from the fastest to the slowest
     subnet's predicted latency (size and memory limits raised to the board's whole
     storage and RAM, so that each profile is a different latency trade-off). The mean
     is extrapolated linearly to K profiles.

Scratch (per network)
  4. for the first ``--scratch-archs`` specialized archs, the same arch trained from a
     random initialisation (`training.scratch`), one epoch at a time -- each epoch a full
     cosine cycle (warm restarts), so every evaluation point is an annealed one -- until
     its top-1 reaches the OFA subnet's, capped at ``--scratch-max-epochs`` (a capped run
     is flagged: its cost is then a lower bound). Only the training epochs are charged,
     not the evaluations that decide when to stop. The mean per network is extrapolated
     linearly to K networks.

Two disjoint subsets of the 10,000 test images keep selection and judgement apart: the
*search* split validates training, measures predictor samples and re-ranks; the *report*
split sets the target (the OFA subnet's top-1) and judges the scratch runs.

Printed: K, OFA total, scratch total (kJ, g CO2e, CPU s), the ratio scratch/OFA, the
break-even K (OFA's fixed cost / (scratch per network - specialization per profile)) and
the ratio at K = 20, with what was measured and what extrapolated. Energy here is CPU
energy by the documented model (RAPL where readable); the load average is printed,
because CPU seconds on a shared machine drift with it less than wall time, but they do.

The defaults (10,000 training images, phases 4,1,1,2, scratch runs capped at 15 epochs,
one torch thread) took 16 minutes on 2 cores shared at a load average of 1-4; one
thread, because two threads contending for cores that other work shares spin and burn
CPU seconds without progress.
Smaller and faster: ``--train-images 2500 --epochs 2,1,1,1 --test-images 1000``
(about 6 minutes); larger on an idle machine: ``--train-images 0 --threads 2``::

    .venv/bin/python bench/carbon_ofa_vs_scratch.py [--train-images 10000] \
        [--epochs 4,1,1,2] [--scratch-archs 2] [--threads 1] [--json-out carbon.json]

The trained supernet and its metered cost are kept in ``--cache-dir`` and reused by a
later run with the same settings (said so in the output; ``--fresh`` retrains).
Needs ``../shared/datasets/cifar10`` (or ``--cifar-dir``); without it, says so and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ofa_fleet.carbon.cost import EnergyCost, total
from ofa_fleet.carbon.meter import EnergyModel
from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import Checkpoint, load_checkpoint
from ofa_fleet.core.space import SearchSpace, cpu_space
from ofa_fleet.data import DataSplits, ImageDataset, load_dataset
from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.hardware.profile_file import load_profile
from ofa_fleet.predictors.accuracy import AccuracyPredictor, fit_accuracy_predictor
from ofa_fleet.predictors.accuracy_samples import measure_samples
from ofa_fleet.predictors.subnet_predictor import SubnetPredictor
from ofa_fleet.search.candidates import Budget
from ofa_fleet.search.evolution import EvolutionSearch, EvolutionSettings
from ofa_fleet.subnet import export_subnet, materialize
from ofa_fleet.training.config import TrainConfig, parse_phase_epochs
from ofa_fleet.training.evaluate import top1_accuracy
from ofa_fleet.training.scratch import fresh_network, train_from_scratch
from ofa_fleet.training.trainer import ProgressiveTrainer

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from cifar10_ofa_vs_scratch import DEFAULT_CIFAR, subset, unpack

ROOT = Path(__file__).resolve().parent.parent
BASE_PROFILE = ROOT / "deploy" / "profiles" / "raspberry-pi-4.yaml"
console = Console()
if not console.is_terminal:  # a log file: wide enough for the tables
    console = Console(width=160)


def log(text: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


# ------------------------------------------------------------------------------ data


@dataclasses.dataclass(frozen=True)
class Data:
    """Training splits whose held-out part is the *search* split, and the report split."""

    splits: DataSplits
    report: ImageDataset


def split_test(splits: DataSplits, count: int, seed: int) -> Data:
    """Two disjoint seeded subsets of ``count`` test images each (0: halves of it all)."""
    held = len(splits.val)
    count = held // 2 if count <= 0 or 2 * count > held else count
    order = torch.randperm(held, generator=torch.Generator().manual_seed(seed + 1))
    search = splits.val.subset(order[:count])
    report = splits.val.subset(order[count : 2 * count])
    return Data(dataclasses.replace(splits, val=search), report)


# -------------------------------------------------------------------- OFA: training


def train_supernet(
    data: Data, config: TrainConfig, space: SearchSpace, ckpt: Path, model: EnergyModel
) -> dict[str, Any]:
    """Train by progressive shrinking inside one meter; the measured cost is kept beside
    the checkpoint, so a later run on the same settings reuses both (and says so)."""
    sidecar = ckpt.with_suffix(".cost.json")
    if ckpt.exists() and sidecar.exists() and load_checkpoint(ckpt).finished:
        record: dict[str, Any] = json.loads(sidecar.read_text())
        record["reused"] = True
        return record
    ckpt.unlink(missing_ok=True)
    from ofa_fleet.console.progress import RichTrainingProgress

    load_before = load_average()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with RichTrainingProgress() as observer, model.meter() as reading:
        result = ProgressiveTrainer(data.splits, ckpt, config, space, observer).run()
    record = {
        "cost": reading.cost.to_dict(),
        "wall_seconds": reading.wall_seconds,
        "started": started,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "images_seen": result.figures.images_seen,
        "subnet_images": result.figures.subnet_images,
        "epochs_per_phase": list(config.epochs_per_phase),
        "history": result.figures.history,
        "reused": False,
    }
    sidecar.write_text(json.dumps(record, indent=2))
    return record


# ------------------------------------------------------------- OFA: accuracy predictor


def fit_predictor(
    checkpoint: Checkpoint, data: Data, samples: int, target: int, seed: int, model: EnergyModel
) -> tuple[AccuracyPredictor, dict[str, Any]]:
    """Measure ``samples`` random subnets and fit on them; extrapolate to ``target``."""
    rng = random.Random(seed)
    archs = [ArchConfig.sample(checkpoint.space, rng) for _ in range(samples)]
    with bar() as progress:
        task = progress.add_task("predictor samples", total=samples)
        with model.meter() as sampling:
            measured, _ = measure_samples(
                checkpoint.supernet,
                data.splits,
                archs,
                lambda done, _total: progress.update(task, completed=done),
            )
    with model.meter() as fitting:
        predictor = fit_accuracy_predictor(
            checkpoint.space, checkpoint.version, measured, seed=seed
        )
    per_sample = sampling.cost.scaled(1.0 / samples)
    extrapolated = per_sample.scaled(target) + fitting.cost
    return predictor, {
        "samples_measured": samples,
        "samples_extrapolated_to": target,
        "sampling_cost": sampling.cost.to_dict(),
        "per_sample_cost": per_sample.to_dict(),
        "fit_cost": fitting.cost.to_dict(),
        "cost": extrapolated.to_dict(),
        "kendall_tau_holdout": round(predictor.quality.kendall_tau, 4),
        "rmse_points_holdout": round(predictor.quality.rmse_points, 3),
    }


# ------------------------------------------------------------- OFA: specialization


def profiles(
    space: SearchSpace, checkpoint: Checkpoint, fractions: Sequence[float]
) -> list[HardwareProfile]:
    """The base profile with latency budgets spread over the space's predicted range."""
    base = load_profile(BASE_PROFILE)
    net = checkpoint.supernet
    predictor = SubnetPredictor(space, net.in_channels, net.num_classes, base)
    ends = [
        dataclasses.replace(arch, resolution=r)
        for arch in (ArchConfig.min(space), ArchConfig.max(space))
        for r in space.resolutions
    ]
    latency = predictor.predict(ends).latency_ms
    fastest, slowest = float(latency.min()), float(latency.max())
    result = []
    for fraction in fractions:
        budget = fastest + fraction * (slowest - fastest)
        constraints = dataclasses.replace(
            base.constraints,
            latency_budget_ms=round(budget, 4),
            max_model_bytes=base.storage_bytes,
            max_peak_memory_bytes=base.ram_bytes,
        )
        name = f"{base.name}-{budget:.2f}ms"
        result.append(dataclasses.replace(base, name=name, constraints=constraints))
    return result


def specialize(
    checkpoint: Checkpoint,
    data: Data,
    accuracy: AccuracyPredictor,
    profile: HardwareProfile,
    settings: EvolutionSettings,
    model: EnergyModel,
) -> dict[str, Any]:
    """Search, re-rank, extract + recalibrate + export one profile, each step metered."""
    space, net, splits = checkpoint.space, checkpoint.supernet, data.splits
    with model.meter() as search_reading:
        predictor = SubnetPredictor(
            space, net.in_channels, net.num_classes, profile, accuracy, checkpoint.version
        )
        budget = Budget.of(profile.constraints, space)
        outcome = EvolutionSearch(space, predictor.predict, budget, settings).run()
    with model.meter() as rerank_reading:
        measured = []
        for candidate in outcome.ranked:
            sub = materialize(net, candidate.arch, splits, settings.seed)
            top1 = top1_accuracy(sub.net, splits.val, splits.normalization, sub.arch.resolution)
            measured.append((top1, -candidate.latency_ms, candidate))
        _, _, chosen = max(measured, key=lambda m: (m[0], m[1]))
    with model.meter() as export_reading:
        subnet = materialize(net, chosen.arch, splits, settings.seed)
        exported = export_subnet(checkpoint, subnet, splits, settings.seed)
    # Judged on the report split, which selection never saw: the accuracy to reach.
    report_top1 = top1_accuracy(
        subnet.net, data.report, splits.normalization, chosen.arch.resolution
    )
    costs = [search_reading.cost, rerank_reading.cost, export_reading.cost]
    return {
        "profile": profile.name,
        "latency_budget_ms": profile.constraints.latency_budget_ms,
        "arch": str(chosen.arch),
        "predicted_latency_ms": round(chosen.latency_ms, 4),
        "macs": subnet.complexity.macs,
        "candidates_evaluated": outcome.statistics.evaluated,
        "reranked": len(outcome.ranked),
        "onnx_bytes": len(exported.onnx_bytes),
        "onnx_max_abs_diff": exported.max_abs_diff,
        "search_top1": max(m[0] for m in measured),
        "report_top1": report_top1,
        "search_cost": search_reading.cost.to_dict(),
        "rerank_cost": rerank_reading.cost.to_dict(),
        "export_cost": export_reading.cost.to_dict(),
        "cost": total(costs).to_dict(),
        "wall_seconds": search_reading.wall_seconds
        + rerank_reading.wall_seconds
        + export_reading.wall_seconds,
    }


# ------------------------------------------------------------------------ scratch


def scratch_to_target(
    arch: ArchConfig,
    space: SearchSpace,
    data: Data,
    target: float,
    max_epochs: int,
    seed: int,
    model: EnergyModel,
    progress: Progress,
) -> dict[str, Any]:
    """Train ``arch`` from scratch an epoch at a time until the report top-1 >= target."""
    splits = data.splits
    torch.manual_seed(seed)
    net = fresh_network(space, arch, int(splits.train.images.shape[1]), len(splits.train.classes))
    epoch_images = (len(splits.train) // 64) * 64
    task = progress.add_task(f"scratch {arch.resolution}px", total=max_epochs)
    epochs: list[dict[str, Any]] = []
    costs: list[EnergyCost] = []
    reached = False
    for epoch in range(1, max_epochs + 1):
        with model.meter() as reading:
            result = train_from_scratch(net, arch, splits, epoch_images, seed=seed + 1000 * epoch)
        net = result.net
        top1 = top1_accuracy(
            net, data.report, splits.normalization, arch.resolution, channels_last=True
        )
        costs.append(reading.cost)
        epochs.append({"epoch": epoch, "top1": top1, "cost": reading.cost.to_dict()})
        progress.update(task, completed=epoch, description=f"scratch top-1 {top1:.3f}")
        if top1 >= target:
            reached = True
            break
    return {
        "arch": str(arch),
        "target_top1": target,
        "reached": reached,
        "epochs": len(epochs),
        "final_top1": epochs[-1]["top1"],
        "history": epochs,
        "cost": total(costs).to_dict(),
    }


# ------------------------------------------------------------------------- ledger


def ledger(
    fixed: EnergyCost, per_profile: EnergyCost, per_network: EnergyCost, ks: Sequence[int]
) -> dict[str, Any]:
    """OFA(K) = fixed + K x per profile; scratch(K) = K x per network; break-even K."""
    rows = []
    for k in ks:
        ofa = fixed + per_profile.scaled(k)
        scratch = per_network.scaled(k)
        rows.append(
            {
                "k": k,
                "ofa": ofa.to_dict(),
                "scratch": scratch.to_dict(),
                "ratio": scratch.joules / ofa.joules if ofa.joules > 0 else 0.0,
            }
        )
    saving = per_network.joules - per_profile.joules
    break_even = fixed.joules / saving if saving > 0 else None
    return {"rows": rows, "break_even_k": break_even}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/ofa-fleet-bench"))
    parser.add_argument("--train-images", type=int, default=10_000, help="0: all 50,000")
    parser.add_argument("--test-images", type=int, default=2000, help="per split (two)")
    parser.add_argument("--epochs", default="4,1,1,2", help="epochs of the four phases")
    parser.add_argument("--predictor-samples", type=int, default=10, help="measured (>= 10)")
    parser.add_argument("--predictor-target", type=int, default=100, help="extrapolated to")
    parser.add_argument("--budget-fractions", default="0.15,0.45,0.8")
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=4, help="re-ranked by measured top-1")
    parser.add_argument("--scratch-archs", type=int, default=2)
    parser.add_argument("--scratch-max-epochs", type=int, default=15)
    parser.add_argument("--ks", default="1,5,20")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--fresh", action="store_true", help="retrain a cached supernet")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--report", type=Path, help="print the tables of a --json-out file")
    args = parser.parse_args(argv)
    if args.report:
        report(json.loads(args.report.read_text()))
        return 0
    if not (args.cifar_dir / "train.tar.gz").is_file():
        console.print(f"skipped: CIFAR-10 archives not found in {args.cifar_dir}")
        return 0
    if args.predictor_samples < 10:
        parser.error("--predictor-samples must be at least 10 (the predictor fit needs 10)")
    torch.set_num_threads(args.threads)
    model = EnergyModel.from_environment()
    load_start = load_average()
    log(f"energy model {model.describe()}; load average {load_start}")
    root = unpack(args.cifar_dir, args.cache_dir)
    started = time.perf_counter()
    full = load_dataset(str(root), image_size=32)
    data = split_test(subset(full, args.train_images, args.seed), args.test_images, args.seed)
    log(
        f"data: {len(data.splits.train)} train images, {len(data.splits.val)} search + "
        f"{len(data.report)} report test images ({time.perf_counter() - started:.1f} s)"
    )
    epochs = parse_phase_epochs(args.epochs)
    config = TrainConfig(epochs_per_phase=epochs, seed=args.seed)
    space = cpu_space()
    ckpt = args.cache_dir / (
        f"carbon-{len(data.splits.train)}-{len(data.splits.val)}-"
        f"{'-'.join(map(str, epochs))}-s{args.seed}.ckpt"
    )
    if args.fresh:
        ckpt.with_suffix(".cost.json").unlink(missing_ok=True)
    log("OFA: training the supernet by progressive shrinking (metered)")
    training = train_supernet(data, config, space, ckpt, model)
    if training["reused"]:
        log(f"reused the supernet and its cost measured in a run started {training['started']}")
    checkpoint = load_checkpoint(ckpt)

    log(f"OFA: accuracy predictor from {args.predictor_samples} measured subnets")
    accuracy, predictor = fit_predictor(
        checkpoint, data, args.predictor_samples, args.predictor_target, args.seed, model
    )
    settings = EvolutionSettings(
        population=args.population,
        generations=args.generations,
        seed=args.seed,
        top_k=args.top_k,
    )
    fractions = [float(f) for f in args.budget_fractions.split(",")]
    specializations = []
    with bar() as progress:
        task = progress.add_task("specializing profiles", total=len(fractions))
        for profile in profiles(space, checkpoint, fractions):
            specializations.append(specialize(checkpoint, data, accuracy, profile, settings, model))
            progress.advance(task)

    scratch = []
    with bar() as progress:
        for spec in specializations[: args.scratch_archs]:
            arch = ArchConfig.parse(spec["arch"], space)
            scratch.append(
                scratch_to_target(
                    arch,
                    space,
                    data,
                    spec["report_top1"],
                    args.scratch_max_epochs,
                    args.seed,
                    model,
                    progress,
                )
            )

    fixed = EnergyCost.from_dict(training["cost"]) + EnergyCost.from_dict(predictor["cost"])
    per_profile = total([EnergyCost.from_dict(s["cost"]) for s in specializations]).scaled(
        1.0 / len(specializations)
    )
    per_network = total([EnergyCost.from_dict(s["cost"]) for s in scratch]).scaled(
        1.0 / max(1, len(scratch))
    )
    ks = [int(k) for k in args.ks.split(",")]
    result = {
        "energy_model": model.describe(),
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "train_images": len(data.splits.train),
        "search_test_images": len(data.splits.val),
        "report_test_images": len(data.report),
        "supernet": training,
        "predictor": predictor,
        "specializations": specializations,
        "scratch": scratch,
        "fixed_cost": fixed.to_dict(),
        "per_profile_cost": per_profile.to_dict(),
        "per_network_cost": per_network.to_dict(),
        "measured": {
            "profiles_specialized": len(specializations),
            "scratch_networks": len(scratch),
            "predictor_samples": args.predictor_samples,
        },
        "ledger": ledger(fixed, per_profile, per_network, ks),
    }
    report(result)
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
        log(f"wrote {args.json_out}")
    return 0


# ------------------------------------------------------------------------- report


def _cost_cells(cost: dict[str, float]) -> list[str]:
    return [
        f"{cost['joules'] / 1000:.2f}",
        f"{cost['co2e_grams']:.2f}",
        f"{cost['cpu_seconds']:.0f}",
    ]


def report(result: dict[str, Any]) -> None:
    training = result["supernet"]
    predictor = result["predictor"]
    console.print(
        f"energy model: {result['energy_model']}; {result['threads']} torch threads on "
        f"{result['cpu_count']} logical cores; load average at start "
        f"{result['load_average_start']}, at end {result['load_average_end']}"
    )
    reused = " (REUSED from the run started " + training["started"] + ")"
    console.print(
        f"supernet: phases {training['epochs_per_phase']} on {result['train_images']} images, "
        f"{training['images_seen']:,} images seen, measured "
        f"{training['cost']['cpu_seconds']:.0f} CPU s / {training['wall_seconds']:.0f} wall s"
        f"{reused if training['reused'] else ''}; load {training['load_average_before']} -> "
        f"{training['load_average_after']}"
    )
    console.print(
        f"accuracy predictor: {predictor['samples_measured']} subnet evaluations MEASURED "
        f"({predictor['per_sample_cost']['cpu_seconds']:.1f} CPU s each) + MLP fit "
        f"({predictor['fit_cost']['cpu_seconds']:.1f} CPU s), EXTRAPOLATED to "
        f"{predictor['samples_extrapolated_to']} evaluations: "
        f"{predictor['cost']['cpu_seconds']:.0f} CPU s"
    )
    table = Table(title="OFA specialization per profile (measured)")
    for column in ("profile", "arch", "MACs", "OFA top-1", "search", "re-rank", "export", "CPU s"):
        table.add_column(column, justify="left" if column in ("profile", "arch") else "right")
    for spec in result["specializations"]:
        table.add_row(
            spec["profile"],
            spec["arch"],
            f"{spec['macs'] / 1e6:.1f}M",
            f"{spec['report_top1'] * 100:.2f}%",
            f"{spec['search_cost']['cpu_seconds']:.1f}",
            f"{spec['rerank_cost']['cpu_seconds']:.1f}",
            f"{spec['export_cost']['cpu_seconds']:.1f}",
            f"{spec['cost']['cpu_seconds']:.1f}",
        )
    console.print(table)
    table = Table(title="From scratch to the OFA subnet's top-1 (measured)")
    for column in ("arch", "target top-1", "reached", "epochs", "final top-1", "CPU s", "kJ"):
        table.add_column(column, justify="left" if column == "arch" else "right")
    for run in result["scratch"]:
        table.add_row(
            run["arch"],
            f"{run['target_top1'] * 100:.2f}%",
            "yes" if run["reached"] else "NO (epoch cap: cost is a lower bound)",
            str(run["epochs"]),
            f"{run['final_top1'] * 100:.2f}%",
            f"{run['cost']['cpu_seconds']:.0f}",
            f"{run['cost']['joules'] / 1000:.2f}",
        )
    console.print(table)
    measured = result["measured"]
    table = Table(title="Cost of K specialized networks: once-for-all vs from scratch")
    for column in (
        "K",
        "OFA kJ",
        "OFA g CO2e",
        "OFA CPU s",
        "scratch kJ",
        "scratch g CO2e",
        "scratch CPU s",
        "scratch/OFA",
        "OFA profiles",
        "scratch networks",
    ):
        table.add_column(column, justify="right")
    n_profiles, n_networks = measured["profiles_specialized"], measured["scratch_networks"]
    for row in result["ledger"]["rows"]:
        k = row["k"]
        table.add_row(
            str(k),
            *_cost_cells(row["ofa"]),
            *_cost_cells(row["scratch"]),
            f"{row['ratio']:.2f}x",
            "measured mean" if k <= n_profiles else f"{n_profiles} measured, EXTRAPOLATED",
            "measured mean" if k <= n_networks else f"{n_networks} measured, EXTRAPOLATED",
        )
    console.print(table)
    console.print(
        f"every OFA row includes the supernet (measured) and the accuracy predictor "
        f"({measured['predictor_samples']} subnet evaluations measured, EXTRAPOLATED to "
        f"{result['predictor']['samples_extrapolated_to']}); K times the mean per profile / "
        "per network measured, linearly"
    )
    break_even = result["ledger"]["break_even_k"]
    fixed, per_profile = result["fixed_cost"], result["per_profile_cost"]
    per_network = result["per_network_cost"]
    console.print(
        f"fixed OFA cost (supernet + predictor) {fixed['joules'] / 1000:.2f} kJ; per profile "
        f"{per_profile['joules'] / 1000:.3f} kJ (mean of {measured['profiles_specialized']} "
        f"measured); scratch per network {per_network['joules'] / 1000:.2f} kJ (mean of "
        f"{measured['scratch_networks']} measured)"
    )
    console.print(
        "break-even K: "
        + (
            "never (scratch is not dearer per network)"
            if break_even is None
            else f"{break_even:.1f}"
        )
        + " profiles; scratch/OFA at K=20: "
        + next((f"{r['ratio']:.2f}x" for r in result["ledger"]["rows"] if r["k"] == 20), "n/a")
        + " (K beyond the measured counts: extrapolated linearly)"
    )
    if any(not run["reached"] for run in result["scratch"]):
        console.print(
            "note: a scratch run hit the epoch cap before the OFA subnet's top-1; its cost, "
            "and so the scratch figures, are lower bounds"
        )


if __name__ == "__main__":
    sys.exit(main())
