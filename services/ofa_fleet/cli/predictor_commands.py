"""`profile-device`, `predict` and `predictor fit`: the predictors from the command line."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ofa_fleet.cli.common_flags import add_checkpoint_flag, add_json_flag
from ofa_fleet.cli.core_commands import add_device_flag, write_atomically
from ofa_fleet.console.output import step_progress
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.inference.graph_optimization import DEFAULT_GRAPH_OPTIMIZATION, GRAPH_OPTIMIZATIONS

# torch, scikit-learn and onnxruntime load in the handlers that use them, so that building
# the parser (and running the light commands) does not pay for them.
if TYPE_CHECKING:
    from ofa_fleet.hardware.profile import Constraints
    from ofa_fleet.predictors.accuracy import AccuracySample


def add_commands(sub: argparse._SubParsersAction) -> None:
    profile = sub.add_parser(
        "profile-device", help="measure this machine's latency table for a supernet's space"
    )
    add_checkpoint_flag(profile)
    profile.add_argument("--out", required=True, type=Path, help="latency table JSON to write")
    profile.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    profile.add_argument(
        "--provider",
        default="CPUExecutionProvider",
        help="onnxruntime execution provider to time with (default CPUExecutionProvider)",
    )
    profile.add_argument(
        "--graph-optimization",
        choices=GRAPH_OPTIMIZATIONS,
        default=DEFAULT_GRAPH_OPTIMIZATION,
        help="onnxruntime graph optimizations, as the device runs its model (default "
        f"{DEFAULT_GRAPH_OPTIMIZATION})",
    )
    profile.add_argument("--whole-models", type=int, default=16, help="subnets timed whole")
    profile.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds")
    add_json_flag(profile)
    profile.set_defaults(handler=run_profile_device)

    predict = sub.add_parser("predict", help="predicted latency, size, memory and top-1")
    add_checkpoint_flag(predict)
    target = predict.add_mutually_exclusive_group(required=True)
    target.add_argument("--profile", type=Path, help="hardware profile (YAML or JSON)")
    target.add_argument("--lut", type=Path, help="latency table; the target is this machine")
    predict.add_argument("--arch", default="max", help="max, min, random or an arch string")
    predict.add_argument("--seed", type=int, default=0, help="for --arch random")
    predict.add_argument(
        "--predictor",
        type=Path,
        help="accuracy predictor from `predictor fit` (default: the one beside the checkpoint "
        "that search keeps, CHECKPOINT.predictor, if any; else no top1)",
    )
    add_json_flag(predict)
    predict.set_defaults(handler=run_predict)

    predictor = sub.add_parser("predictor", help="accuracy predictor")
    actions = predictor.add_subparsers(dest="action", required=True)
    fit = actions.add_parser("fit", help="measure subnets and fit the accuracy predictor")
    add_checkpoint_flag(fit)
    fit.add_argument("--samples", type=int, default=200, help="subnets to measure")
    fit.add_argument(
        "--out", required=True, type=Path, help="predictor file; samples it holds are reused"
    )
    fit.add_argument("--data", help="default: the checkpoint's own dataset")
    fit.add_argument("--holdout", type=float, default=0.2, help="share kept out of the fit")
    fit.add_argument("--seed", type=int, default=0, help="seeds which subnets are drawn")
    add_device_flag(fit)
    add_json_flag(fit)
    fit.set_defaults(handler=run_predictor_fit)


def run_profile_device(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads <= 0:
        raise InvalidArgumentError("--threads must be positive")
    if args.rounds <= 0:
        raise InvalidArgumentError("--rounds must be positive")
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.hardware.local_machine import local_profile
    from ofa_fleet.predictors.device_profiling import profile_device
    from ofa_fleet.predictors.latency import LatencyPredictor
    from ofa_fleet.predictors.layer_index import LayerIndex
    from ofa_fleet.subnet import resolve_arch

    checkpoint = load_checkpoint(args.checkpoint)
    supernet = checkpoint.supernet
    started = time.perf_counter()
    with step_progress() as progress:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done)

        table = profile_device(
            checkpoint.space,
            supernet.in_channels,
            supernet.num_classes,
            threads=args.threads,
            provider=args.provider,
            whole_models=args.whole_models,
            rounds=args.rounds,
            progress=report,
            graph_optimization=args.graph_optimization,
        )
    write_atomically(args.out, json.dumps(table.to_dict(), indent=1).encode())
    predictor = LatencyPredictor(
        LayerIndex(checkpoint.space, supernet.in_channels, supernet.num_classes),
        local_profile(args.threads, table),
    )
    archs = [resolve_arch(s["arch"], checkpoint) for s in table.samples]
    predicted = predictor.predict(archs)
    errors = [abs(p / s["measured_ms"] - 1) for p, s in zip(predicted, table.samples, strict=True)]
    return {
        "out": str(args.out),
        "layers": len(table.layers),
        "boundaries": len(table.boundaries),
        "threads": table.threads,
        "scale": round(table.scale, 4),
        "offset_ms": round(table.offset_ms, 4),
        "whole_models": len(table.samples),
        "whole_models_within_10pct": round(sum(e <= 0.1 for e in errors) / len(errors), 3),
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_predict(args: argparse.Namespace) -> dict[str, Any]:
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.hardware.local_machine import local_profile
    from ofa_fleet.hardware.profile_file import load_latency_table, load_profile
    from ofa_fleet.predictors.accuracy import AccuracyPredictor
    from ofa_fleet.predictors.subnet_predictor import SubnetPredictor
    from ofa_fleet.search.accuracy_source import predictor_path
    from ofa_fleet.subnet import resolve_arch

    checkpoint = load_checkpoint(args.checkpoint)
    if args.profile is not None:
        profile = load_profile(args.profile)
    else:
        table = load_latency_table(args.lut)
        profile = local_profile(table.threads, table)
    # The predictor named, else the one `search` keeps beside the checkpoint (so both
    # commands show the same top-1), else none.
    sidecar = predictor_path(args.checkpoint)
    accuracy_file = args.predictor or (sidecar if sidecar.is_file() else None)
    accuracy = AccuracyPredictor.load(accuracy_file) if accuracy_file else None
    if accuracy is not None:
        accuracy.check_compatible(checkpoint.space, checkpoint.version)
    predictor = SubnetPredictor(
        checkpoint.space,
        checkpoint.supernet.in_channels,
        checkpoint.supernet.num_classes,
        profile,
        accuracy,
        checkpoint.version,
    )
    arch = resolve_arch(args.arch, checkpoint, args.seed)
    record = predictor.predict([arch]).record(0)
    return {
        **record,
        "profile": profile.name,
        "predictor": None if accuracy_file is None else str(accuracy_file),
        "over_limits": over_limits(record, profile.constraints),
    }


def over_limits(record: dict[str, Any], constraints: Constraints) -> list[str]:
    """Each of the profile's limits the subnet breaks, in words (empty: it fits)."""
    checks = (
        ("latency", record["latency_ms"], constraints.latency_budget_ms, "{:.3f} ms"),
        ("model size", record["model_bytes"], constraints.max_model_bytes, "{:,} bytes"),
        (
            "peak memory",
            record["peak_memory_bytes"],
            constraints.max_peak_memory_bytes,
            "{:,} bytes",
        ),
    )
    return [
        f"{name} {shown.format(value)} over the limit {shown.format(limit)}"
        for name, value, limit, shown in checks
        if value > limit
    ]


def run_predictor_fit(args: argparse.Namespace) -> dict[str, Any]:
    if args.samples < 10:
        raise InvalidArgumentError("--samples must be at least 10")
    from ofa_fleet.core.accelerator import resolve_accelerator
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.predictors.accuracy import fit_accuracy_predictor, sample_archs_for_fit
    from ofa_fleet.predictors.accuracy_samples import measure_samples
    from ofa_fleet.training.checkpoint_data import load_checkpoint_data

    accelerator = resolve_accelerator(args.device)
    checkpoint = load_checkpoint(args.checkpoint)
    known, known_cost = reusable_samples(args.out, checkpoint.version)
    archs = [
        arch
        for arch in sample_archs_for_fit(checkpoint.space, args.samples, args.seed)
        if str(arch) not in known
    ]
    cpu_seconds = 0.0
    if archs:
        splits = load_checkpoint_data(checkpoint, args.data)
        with step_progress() as progress:
            task = progress.add_task("measuring subnets", total=len(archs))
            measured, cpu_seconds = measure_samples(
                checkpoint.supernet,
                splits,
                archs,
                lambda done, total: progress.update(task, completed=done),
                accelerator=accelerator,
            )
        known.update({sample.arch: sample for sample in measured})
    predictor = fit_accuracy_predictor(
        checkpoint.space,
        checkpoint.version,
        list(known.values()),
        holdout_fraction=args.holdout,
        seed=args.seed,
        cost={"sample_cpu_seconds": known_cost + cpu_seconds},
    )
    predictor.save(args.out)
    quality = predictor.quality
    return {
        "out": str(args.out),
        "samples": len(predictor.samples),
        "newly_measured": len(archs),
        "train_samples": quality.train_samples,
        "holdout_samples": quality.holdout_samples,
        "kendall_tau": round(quality.kendall_tau, 4),
        "rmse_points": round(quality.rmse_points, 3),
        "max_error_points": round(quality.max_error_points, 3),
        "sample_cpu_seconds": round(known_cost + cpu_seconds, 1),
        "fit_cpu_seconds": round(predictor.cost["fit_cpu_seconds"], 1),
    }


def reusable_samples(path: Path, supernet_version: str) -> tuple[dict[str, AccuracySample], float]:
    """Samples an earlier fit into ``path`` measured on this supernet, and their CPU time.

    Measuring is the expensive part of a fit (seconds a subnet); asking for more samples
    later measures only the new ones.
    """
    if not path.exists():
        return {}, 0.0
    from ofa_fleet.predictors.accuracy import AccuracyPredictor

    previous = AccuracyPredictor.load(path)
    if previous.supernet_version != supernet_version:
        return {}, 0.0
    samples = {sample.arch: sample for sample in previous.samples}
    return samples, float(previous.cost.get("sample_cpu_seconds", 0.0))
