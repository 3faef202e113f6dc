"""How faithful and how fast the predictors are, measured on this machine.

1. LATENCY. For ``--threads`` 1 and 2: ``DeviceProfiler`` builds this machine's latency
   table (what ``ofa-fleet profile-device`` runs); ``--subnets`` (default 50) seeded
   random subnets are extracted from the checkpoint and exported to ONNX exactly as they
   ship, and timed whole in onnxruntime in the same interleaved rounds as the table
   (each model's fastest round median, see `timing`). Predictions are compared with
   those measurements: the share within +-10% and the RMSE, for the table (``lut``),
   for the table's plain sum (OFA's table used as is, the baseline), for the table
   without its whole-model correction (``lut_boundaries_only``) and for the analytic
   estimate from this machine's figures. The subnets are then timed again in a run of
   their own: on a shared VM the machine's speed drifts between runs, and
   ``separate_run_vs_same_run`` shows by how much, as the error a table measured
   earlier carries on top of its own.
2. CALIBRATION. From the analytic estimate alone, N of the measured subnets are given as
   device reports and the rest are predicted: the share within +-10% for each N
   (mean over ``--draws`` random choices of the N), and the least N reaching 90%.
3. ACCURACY. For every ``--predictor`` file (from ``ofa-fleet predictor fit``): Kendall
   tau and RMSE on its held-out subnets, the same over 5 folds of all its samples, the
   samples it needed and their CPU time.
4. COST. Predictions per second of latency + memory + size (+ accuracy with a
   predictor) for a batch of 10,000 candidates, against one candidate at a time
   through the per-layer objects (the baseline), in the same run.

Run (about 3 minutes on 2 idle cores, plus training a small digits supernet once when
no ``--checkpoint`` is given)::

    .venv/bin/python bench/predictor_fidelity.py [--checkpoint CKPT] \
        [--predictor digits.pred --predictor cifar10.pred] [--json-out results.json]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from scipy.stats import kendalltau

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import Checkpoint, load_checkpoint
from ofa_fleet.core.layers import subnet_layers
from ofa_fleet.hardware.local_machine import local_profile
from ofa_fleet.hardware.profile import LatencyReport
from ofa_fleet.inference.timing import InterleavedTimer
from ofa_fleet.predictors.accuracy import AccuracyPredictor, fit_network, predict_top1
from ofa_fleet.predictors.device_profiling import DeviceProfiler
from ofa_fleet.predictors.latency import LatencyPredictor
from ofa_fleet.predictors.layer_index import LayerIndex
from ofa_fleet.predictors.memory import model_bytes, peak_memory_bytes
from ofa_fleet.predictors.subnet_predictor import SubnetPredictor
from ofa_fleet.subnet import export_subnet, materialize
from ofa_fleet.training.checkpoint_data import load_checkpoint_data

console = Console()


def ensure_checkpoint(path: Path | None, cache: Path) -> Path:
    if path is not None:
        return path
    path = cache / "digits-1-epoch.ckpt"
    if not path.exists():
        console.print(f"training a small digits supernet into {path} (about a minute) ...")
        subprocess.run(
            [sys.executable, "-m", "ofa_fleet.cli.main", "train", "--data", "digits",
             "--out", str(path), "--epochs-per-phase", "1", "--json"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return path


def distinct_archs(checkpoint: Checkpoint, count: int, seed: int) -> list[ArchConfig]:
    rng = random.Random(seed)
    archs: dict[str, ArchConfig] = {}
    while len(archs) < count:
        arch = ArchConfig.sample(checkpoint.space, rng)
        archs.setdefault(str(arch), arch)
    return list(archs.values())


def errors(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    relative = predicted / measured - 1.0
    return {
        "within_10pct": float(np.mean(np.abs(relative) <= 0.10)),
        "rmse_ms": float(np.sqrt(np.mean((predicted - measured) ** 2))),
        "mean_abs_error_pct": float(np.mean(np.abs(relative)) * 100),
        "max_abs_error_pct": float(np.max(np.abs(relative)) * 100),
    }


def latency_fidelity(
    checkpoint: Checkpoint, models: list[tuple[ArchConfig, bytes]], threads: int, rounds: int
) -> tuple[dict[str, Any], np.ndarray, LayerIndex]:
    """Table vs whole subnets timed in the same interleaved rounds, and again alone."""
    net = checkpoint.supernet
    index = LayerIndex(checkpoint.space, net.in_channels, net.num_classes)
    started = time.perf_counter()
    profiler = DeviceProfiler(checkpoint.space, net.in_channels, net.num_classes, threads)
    for arch, onnx_bytes in models:
        profiler.add_probe(onnx_bytes, (1, net.in_channels, arch.resolution, arch.resolution))
    table, same_run = profiler.run(rounds, runs_per_round=20)
    seconds = time.perf_counter() - started
    timer = InterleavedTimer(threads)
    for arch, onnx_bytes in models:
        timer.add(onnx_bytes, (1, net.in_channels, arch.resolution, arch.resolution))
    later = np.array(timer.measure(rounds=rounds, runs_per_round=20))
    measured = np.array(same_run)
    archs = [arch for arch, _ in models]
    lut = LatencyPredictor(index, local_profile(threads, table)).predict(archs)
    plain = np.array(
        [
            sum(table.layers[layer.key] for layer in subnet_layers(
                checkpoint.space, arch, net.in_channels, net.num_classes))
            for arch in archs
        ]
    )  # fmt: skip
    uncorrected = np.array(
        [
            table.table_sum_ms(subnet_layers(
                checkpoint.space, arch, net.in_channels, net.num_classes))
            for arch in archs
        ]
    )  # fmt: skip
    analytic = LatencyPredictor(index, local_profile(threads)).predict(archs)
    result = {
        "threads": threads,
        "profiling_and_timing_seconds": seconds,
        "measured_ms_range": [float(measured.min()), float(measured.max())],
        "lut": errors(lut, measured),
        "plain_table_sum": errors(plain, measured),
        "lut_boundaries_only": errors(uncorrected, measured),
        "analytic": errors(analytic, measured),
        "lut_vs_separate_run": errors(lut, later),
        "separate_run_vs_same_run": errors(later, measured),
        "subnets": [
            {"arch": str(a), "measured_ms": float(m), "lut_ms": float(p)}
            for a, m, p in zip(archs, measured, lut, strict=True)
        ],
    }
    return result, measured, index


def calibration_curve(
    index: LayerIndex, archs: list[ArchConfig], measured: np.ndarray, draws: int
) -> dict[str, Any]:
    """Share within +-10% on the subnets not reported, per number of reports."""
    base = local_profile(1)
    pool = len(archs) // 2
    curve = {}
    rng = random.Random(0)
    for count in (0, 1, 2, 3, 5, 8, 10, 15, 20):
        if count > pool:
            break
        shares = []
        for _ in range(draws if count else 1):
            chosen = rng.sample(range(pool), count)
            reports = tuple(LatencyReport(str(archs[i]), float(measured[i])) for i in chosen)
            predictor = LatencyPredictor(index, replace(base, latency_reports=reports))
            held = list(range(pool, len(archs)))
            predicted = predictor.predict([archs[i] for i in held])
            shares.append(np.mean(np.abs(predicted / measured[held] - 1.0) <= 0.10))
        curve[count] = float(np.mean(shares))
    enough = next((n for n, share in curve.items() if share >= 0.9), None)
    return {"share_within_10pct_by_reports": curve, "reports_for_90pct": enough}


def cross_validated(predictor: AccuracyPredictor, folds: int = 5) -> dict[str, float]:
    """Kendall tau and RMSE over ``folds`` folds of the predictor's own samples: every
    sample is held out once, so the figure does not hang on one split's luck."""
    space = predictor.space
    encodings = np.stack([ArchConfig.parse(s.arch, space).encode(space) for s in predictor.samples])
    targets = np.array([s.top1 for s in predictor.samples], dtype=np.float32)
    order = list(range(len(targets)))
    random.Random(1).shuffle(order)
    taus, rmses = [], []
    for fold in range(folds):
        held = order[fold::folds]
        trained = sorted(set(order) - set(held))
        network, base = fit_network(encodings[trained], targets[trained])
        predicted = predict_top1(network, base, encodings[held])
        taus.append(kendalltau(predicted, targets[held]).statistic)
        rmses.append(float(np.sqrt(np.mean((predicted - targets[held]) ** 2))) * 100)
    return {"kendall_tau": float(np.mean(taus)), "rmse_points": float(np.mean(rmses))}


def accuracy_fidelity(paths: list[Path]) -> list[dict[str, Any]]:
    rows = []
    for path in paths:
        predictor = AccuracyPredictor.load(path)
        console.print(f"accuracy: 5-fold cross-validation of {path} ...")
        rows.append(
            {
                "predictor": str(path),
                "supernet_version": predictor.supernet_version,
                "samples": len(predictor.samples),
                "kendall_tau": predictor.quality.kendall_tau,
                "rmse_points": predictor.quality.rmse_points,
                "holdout_samples": predictor.quality.holdout_samples,
                "top1_range": [
                    min(s.top1 for s in predictor.samples),
                    max(s.top1 for s in predictor.samples),
                ],
                "sample_cpu_seconds": predictor.cost.get("sample_cpu_seconds"),
                "fit_cpu_seconds": predictor.cost.get("fit_cpu_seconds"),
                "cross_validated": cross_validated(predictor),
            }
        )
    return rows


def prediction_cost(checkpoint: Checkpoint, predictor_path: Path | None) -> dict[str, Any]:
    net = checkpoint.supernet
    accuracy = AccuracyPredictor.load(predictor_path) if predictor_path else None
    if accuracy is not None and accuracy.supernet_version != checkpoint.version:
        accuracy = None
    batched = SubnetPredictor(
        checkpoint.space, net.in_channels, net.num_classes, local_profile(1), accuracy
    )
    rng = random.Random(1)
    candidates = [ArchConfig.sample(checkpoint.space, rng) for _ in range(10_000)]
    batched.predict(candidates[:100])  # warm-up
    started = time.perf_counter()
    batched.predict(candidates)
    batch_rate = len(candidates) / (time.perf_counter() - started)
    latency = batched.latency
    one_by_one = candidates[:500]
    started = time.perf_counter()
    for arch in one_by_one:
        layers = subnet_layers(checkpoint.space, arch, net.in_channels, net.num_classes)
        model_bytes(layers), peak_memory_bytes(layers)
        latency.predict([arch])
        if accuracy is not None:
            accuracy.predict([arch])
    single_rate = len(one_by_one) / (time.perf_counter() - started)
    return {
        "with_accuracy": accuracy is not None,
        "batched_per_second": batch_rate,
        "one_at_a_time_per_second": single_rate,
        "ratio": batch_rate / single_rate,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--predictor", type=Path, action="append", default=[])
    parser.add_argument("--subnets", type=int, default=50)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/ofa-fleet-bench"))
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    checkpoint = load_checkpoint(ensure_checkpoint(args.checkpoint, args.cache_dir))
    splits = load_checkpoint_data(checkpoint)
    console.print(f"exporting {args.subnets} random subnets of {checkpoint.version} ...")
    models = []
    for arch in distinct_archs(checkpoint, args.subnets, seed=2024):
        subnet = materialize(checkpoint.supernet, arch, splits)
        models.append((arch, export_subnet(checkpoint, subnet, splits).onnx_bytes))
    results: dict[str, Any] = {"checkpoint": checkpoint.version, "latency": []}
    for threads in (int(t) for t in args.threads.split(",")):
        console.print(f"latency, {threads} thread(s): profiling and timing ...")
        result, measured, index = latency_fidelity(checkpoint, models, threads, args.rounds)
        results["latency"].append(result)
        if threads == 1:
            results["calibration"] = calibration_curve(
                index, [arch for arch, _ in models], measured, args.draws
            )
    results["accuracy"] = accuracy_fidelity(args.predictor)
    versions = {path: AccuracyPredictor.load(path).supernet_version for path in args.predictor}
    own = next((p for p, v in versions.items() if v == checkpoint.version), None)
    results["cost"] = prediction_cost(checkpoint, own)
    report(results)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    return 0


def report(results: dict[str, Any]) -> None:
    table = Table(title="latency: predicted vs measured whole subnets (onnxruntime, batch 1)")
    for column in ("threads", "predictor", "within +-10%", "RMSE ms", "mean |err|", "max |err|"):
        table.add_column(column)
    for row in results["latency"]:
        for name in (
            "lut", "plain_table_sum", "lut_boundaries_only", "analytic",
            "lut_vs_separate_run", "separate_run_vs_same_run",
        ):  # fmt: skip
            e = row[name]
            table.add_row(
                str(row["threads"]), name, f"{e['within_10pct']:.0%}", f"{e['rmse_ms']:.4f}",
                f"{e['mean_abs_error_pct']:.1f}%", f"{e['max_abs_error_pct']:.1f}%",
            )  # fmt: skip
    console.print(table)
    for row in results["latency"]:
        low, high = row["measured_ms_range"]
        console.print(
            f"{row['threads']} thread(s): measured {low:.3f}-{high:.3f} ms; "
            f"profiling and timing took {row['profiling_and_timing_seconds']:.1f} s"
        )
    curve = results["calibration"]
    console.print(
        "calibration from the analytic estimate, share within +-10% by reports: "
        + ", ".join(f"{n}: {s:.0%}" for n, s in curve["share_within_10pct_by_reports"].items())
        + f"; 90% reached with {curve['reports_for_90pct']} reports"
    )
    for row in results["accuracy"]:
        console.print(
            f"accuracy predictor {row['predictor']}: Kendall tau {row['kendall_tau']:.3f}, "
            f"RMSE {row['rmse_points']:.2f} points on {row['holdout_samples']} held-out "
            f"subnets; {row['samples']} samples (top-1 {row['top1_range'][0]:.3f}-"
            f"{row['top1_range'][1]:.3f}) cost {row['sample_cpu_seconds']:.0f} CPU s, "
            f"the fit {row['fit_cpu_seconds']:.0f} CPU s; 5-fold cross-validated: tau "
            f"{row['cross_validated']['kendall_tau']:.3f}, RMSE "
            f"{row['cross_validated']['rmse_points']:.2f} points"
        )
    cost = results["cost"]
    console.print(
        f"cost: {cost['batched_per_second']:,.0f} candidates/s batched (latency + memory + "
        f"size{' + accuracy' if cost['with_accuracy'] else ''}) vs "
        f"{cost['one_at_a_time_per_second']:,.0f}/s one at a time: {cost['ratio']:.1f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
