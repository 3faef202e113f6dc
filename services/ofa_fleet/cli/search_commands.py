"""`ofa-fleet search`: specialize one profile on this machine (a local Ray or a cluster).

Shows a progress bar per step, then the chosen subnet; writes the verified ONNX model
with ``--out`` and the Pareto front as a PNG with ``--plot``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from ofa_fleet.cli.common_flags import add_checkpoint_flag, add_json_flag
from ofa_fleet.cli.core_commands import write_atomically
from ofa_fleet.console.output import step_progress
from ofa_fleet.errors import InvalidArgumentError

if TYPE_CHECKING:
    from ofa_fleet.hardware.profile import HardwareProfile
    from ofa_fleet.search.specializer import Specialization


def add_command(sub: argparse._SubParsersAction) -> None:
    search = sub.add_parser("search", help="find the best subnet for a hardware profile")
    add_checkpoint_flag(search)
    target = search.add_mutually_exclusive_group(required=True)
    target.add_argument("--profile", type=Path, help="hardware profile (YAML or JSON)")
    target.add_argument("--lut", type=Path, help="latency table; the target is this machine")
    search.add_argument(
        "--latency-budget", type=float, help="ms; required with --lut, overrides --profile's"
    )
    search.add_argument(
        "--predictor", type=Path, help="accuracy predictor (default: CKPT.predictor, fitted once)"
    )
    search.add_argument("--data", help="data for re-ranking (default: the checkpoint's)")
    search.add_argument("--out", type=Path, help="write the verified ONNX model here")
    search.add_argument("--plot", type=Path, help="write the Pareto front as a PNG here")
    add_search_flags(search)
    add_option_flags(search)
    add_json_flag(search)
    search.set_defaults(handler=run_search)


def add_search_flags(parser: argparse.ArgumentParser) -> None:
    """Where the Ray work runs; shared with `serve search`."""
    parser.add_argument(
        "--ray-address",
        default=os.environ.get("RAY_ADDRESS"),
        help="join this Ray cluster (env RAY_ADDRESS); default: start a local Ray",
    )
    parser.add_argument(
        "--workers", type=int, help="Ray tasks at once (default: the cluster's CPUs)"
    )


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the evolution (same seed, same result)"
    )
    parser.add_argument(
        "--population", type=int, default=100, help="candidates per generation (default 100)"
    )
    parser.add_argument("--generations", type=int, default=100, help="at most")
    parser.add_argument("--top-k", type=int, default=4, help="re-ranked by real accuracy")


def run_search(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.lut is not None and args.latency_budget is None:
        raise InvalidArgumentError("--lut needs --latency-budget MS")
    if args.latency_budget is not None and args.latency_budget <= 0:
        raise InvalidArgumentError("--latency-budget must be positive")
    if args.workers is not None and args.workers <= 0:
        raise InvalidArgumentError("--workers must be positive")
    from ofa_fleet.search.ray_runtime import start_ray, stop_ray
    from ofa_fleet.search.service import load_specializer
    from ofa_fleet.search.specializer import Event, SpecializeOptions

    profile = target_profile(args)
    options = SpecializeOptions(
        seed=args.seed,
        population=args.population,
        generations=args.generations,
        top_k=args.top_k,
        measure_latency=args.lut is not None,
    )
    with step_progress() as progress:
        task = progress.add_task("starting Ray", total=None)
        start_ray(args.ray_address)
        try:
            progress.update(task, description="loading supernet")

            def fitting(done: int, total: int) -> None:
                progress.update(
                    task, description="fitting accuracy predictor", completed=done, total=total
                )

            specializer = load_specializer(
                args.checkpoint, args.predictor, args.data, args.workers, fitting
            )

            reached = [0]  # the generation the evolution got to (patience may stop it early)

            def on_event(event: Event) -> None:
                if event.stage == "search":
                    best = f" best {event.best.top1:.4f}" if event.best else ""
                    reached[0] = event.generation
                    progress.update(
                        task,
                        description=f"evolution{best}, {event.evaluated} scored",
                        completed=event.generation,
                        total=event.generations,
                    )
                else:  # the evolution is over: its bar ends full, where it stopped
                    label = "re-ranking by real accuracy" if event.stage == "rerank" else "export"
                    progress.update(
                        task, description=label, completed=reached[0], total=reached[0] or 1
                    )

            progress.update(task, description="evolution", completed=0, total=options.generations)
            result = specializer.specialize(profile, options, on_event)
        finally:
            stop_ray()
    if args.out is not None:
        write_atomically(args.out, result.onnx_bytes)
    if args.plot is not None:
        from ofa_fleet.search.plot import plot_front

        plot_front(result, profile.constraints.latency_budget_ms, args.plot)
    summary = {
        **result.summary(),
        "budget_ms": profile.constraints.latency_budget_ms,
        "out": None if args.out is None else str(args.out),
        "plot": None if args.plot is None else str(args.plot),
    }
    if args.json:
        return summary
    print_result(result, profile, summary)
    return None


def target_profile(args: argparse.Namespace) -> HardwareProfile:
    from ofa_fleet.hardware.local_machine import local_profile
    from ofa_fleet.hardware.profile_file import load_latency_table, load_profile

    if args.profile is not None:
        profile = load_profile(args.profile)
    else:
        table = load_latency_table(args.lut)
        profile = local_profile(table.threads, table)
    if args.latency_budget is not None:
        constraints = dataclasses.replace(
            profile.constraints, latency_budget_ms=args.latency_budget
        )
        profile = dataclasses.replace(profile, constraints=constraints)
    return profile


def print_result(result: Specialization, profile: HardwareProfile, summary: dict[str, Any]) -> None:
    measured = summary["measured"]
    predicted = result.predicted
    stats = result.statistics
    table = Table(title=f"ofa-fleet search: {profile.name}", show_header=False)
    table.add_column("field", style="bold", overflow="fold")
    table.add_column("value", overflow="fold")  # an arch is pasted back whole
    rows = [
        ("arch", str(result.arch)),
        ("top-1", f"{measured['top1'] * 100:.2f}% measured, {predicted.top1 * 100:.2f}% predicted"),
        (
            "latency",
            f"{predicted.latency_ms:.3f} ms predicted ({result.latency_source})"
            + (
                f", {measured['latency_ms']:.3f} ms measured"
                if measured["latency_ms"] is not None
                else ""
            )
            + f"; budget {profile.constraints.latency_budget_ms:g} ms",
        ),
        (
            "model",
            f"{measured['model_bytes']:,} bytes (limit {profile.constraints.max_model_bytes:,})",
        ),
        (
            "peak memory",
            f"{predicted.peak_memory_bytes:,} bytes "
            f"(limit {profile.constraints.max_peak_memory_bytes:,})",
        ),
        ("MACs", f"{predicted.macs:,}"),
        ("sha256", result.sha256),
        (
            "search",
            f"{stats['generations']} generations, {stats['candidates_evaluated']:,} scored "
            f"({stats['stop_reason']}), {stats['total_seconds']:.2f} s "
            f"on {stats['workers']} workers",
        ),
        ("pareto front", f"{len(result.front)} points"),
        (
            "cost",
            f"{result.cost.cpu_seconds:.1f} CPU s, {result.cost.joules:,.0f} J, "
            f"{result.cost.co2e_grams:.3f} g CO2e"
            + (" (of the first search)" if result.from_cache else ""),
        ),
    ]
    if summary["out"]:
        rows.append(("out", summary["out"]))
    if summary["plot"]:
        rows.append(("plot", summary["plot"]))
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)
