"""The search service: how fast it specializes, how well it searches, how it scales.

What a fleet operator waits for is one `Specializer.specialize` call: a hardware
profile in, a verified ONNX model out. Each figure below is printed next to a baseline
measured in the same run, because on a shared 2-core VM absolute seconds drift by tens
of percent between runs, while figures taken side by side in one run drift together.

1. END TO END, WARM SERVICE. For every profile in ``deploy/profiles/*.yaml``,
   ``specialize(profile, SpecializeOptions(use_cache=False))`` -- evolution with candidate
   batches scored on the Ray workers, re-ranking of the best few by measured top-1,
   ONNX export and its check against PyTorch -- after `load_specializer` has warmed the
   workers, as a serving process runs it. Seconds per profile (split into search,
   re-rank, export), their median and max (aim: under 5 s), and as the baseline the same
   request again with ``use_cache=True``: the cached answer. The load itself (Ray start,
   accuracy predictor, warming every worker) is printed too: what a cold CLI run adds.
2. AGAINST THE PEER. MIT's ``ofa`` package (``ofa==0.1.0.post202307202001``, via
   ``bench/peer_ofa.py``): its ``EvolutionFinder`` (population 100, 500 generations, its
   own ``MobileNetArchEncoder`` for sampling and mutation, ``random`` and ``numpy``
   seeded) against our `EvolutionSearch` (default `EvolutionSettings`, in-process,
   scored by `SubnetPredictor.predict`) and against `random_search` with as many
   scored candidates as ours scored. All three optimise the same objective: the peer's
   efficiency predictor is our `SubnetPredictor` latency, returning +inf for a subnet
   over the profile's model-size or peak-memory limit (the peer handles one efficiency
   constraint only), and its accuracy predictor is our `AccuracyPredictor`. The peer's
   answer is scored again with our predictor and checked against the whole budget.
   Budgets: each profile's own and tighter ones at ``--tighter`` fractions of the way
   from the fastest subnet's predicted latency to the budget (or to the slowest subnet,
   when the budget admits every subnet). Halfway still saturates predicted top-1 at
   1.0 on the digits supernet, where every search ties, so the default fractions are
   0.25 and 0.1. Aim: ours at least as accurate in at most a fifth of the peer's time.
   The peer redraws a child until it fits, forever when nothing fits: it only runs where
   our search found a feasible subnet, and under a ``--peer-timeout`` alarm.
3. RAY SCALING. A search's evolution is one Ray task that scores beside its predictor
   and streams its progress back (`SearchWorkers.evolve`): seconds per evolution that
   way and, as the ceiling, the same evolution in this process with the predictor
   called directly, for every example profile, ``--scale-repeats`` interleaved repeats
   (both must find the same best arch, checked). Then ``--concurrent`` distinct profiles
   (the example profiles with scaled budgets) specialized one after another and all at
   once from as many threads on the same `Specializer`: total seconds of each and their
   ratio. Every profile's predictor is built in the workers first, so neither order pays
   for it.
4. SEARCH QUALITY ON THIS MACHINE. This machine's latency tables for 1 and 2 threads
   (`profile_device`, ``--lut-rounds`` rounds; cached in ``--lut-dir`` and reused while
   the space and threads match -- a reused table also carries the machine's drift since
   it was measured), then for ``--quality-budgets`` budgets spread from the fastest to
   the slowest subnet's predicted latency: ``specialize(local_profile(threads, table)``
   with that budget, ``measure_latency=True)``, the winner timed in onnxruntime on the
   Ray worker that exported it. Printed: budget, predicted and measured latency,
   measured/budget, within budget, measured top-1; summary: all within budget, median
   measured/budget. Only meaningful on a local Ray (no ``--ray-address``): the worker
   that times the model must be this machine.

Torch runs one thread in this process (``--threads``), as it does in the Ray workers:
the accuracy MLP scores batches of ~100 subnets, where two threads on two shared cores
were measured 5x slower than one. Ray keeps its default token authentication, as
``ofa-fleet search`` does: a local Ray listens on the machine's address, not only on
loopback, so the benchmark does not turn it off.

Run (about 5 minutes on 2 cores; the first run with the default checkpoint also trains
``runs/demo/supernet.ckpt``, about 2.5 minutes, and fits its accuracy predictor beside
it, about a minute)::

    .venv/bin/python bench/search_specialize.py [--checkpoint CKPT] [--predictor PRED] \
        [--skip-e2e] [--skip-peer] [--no-peer] [--skip-scaling] [--skip-quality] \
        [--lut-dir runs/bench] [--json]

``--json`` prints one JSON object on stdout instead of the tables; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import platform
import random
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import Checkpoint, load_checkpoint
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import InfeasibleProfileError, OfaFleetError
from ofa_fleet.hardware.latency_table import LatencyTable
from ofa_fleet.hardware.local_machine import local_profile
from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.hardware.profile_file import load_latency_table, load_profile
from ofa_fleet.predictors.accuracy import AccuracyPredictor
from ofa_fleet.predictors.subnet_predictor import SubnetPredictor
from ofa_fleet.search.candidates import Budget, candidates
from ofa_fleet.search.evolution import EvolutionSearch, EvolutionSettings
from ofa_fleet.search.genome import Genome
from ofa_fleet.search.random_search import random_search

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_ofa

if TYPE_CHECKING:
    from ofa_fleet.search.specializer import Specialization, Specializer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT = Path("runs/demo/supernet.ckpt")
PEER_FINDER = "ofa.nas.search_algorithm:EvolutionFinder"
PEER_ENCODER = "ofa.nas.accuracy_predictor.arch_encoder:MobileNetArchEncoder"
AIM_E2E_SECONDS = 5.0
AIM_TIME_RATIO = 0.2  # ours / peer
CONCURRENT_BUDGET_FACTORS = (0.9, 0.8, 0.7, 0.6)
QUALITY_FRACTIONS = (0.1, 0.25, 0.45, 0.7, 1.0)

progress = Console(stderr=True)


def log(text: str) -> None:
    progress.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")


# --------------------------------------------------------------------------- helpers


@dataclass
class Setup:
    """What every section shares: the supernet, its accuracy predictor, the profiles."""

    checkpoint: Checkpoint
    accuracy: AccuracyPredictor
    profiles: list[HardwareProfile]
    seed: int

    @property
    def space(self) -> SearchSpace:
        return self.checkpoint.space

    def predictor(self, profile: HardwareProfile, accuracy: bool = True) -> SubnetPredictor:
        """What the workers build for ``profile``, in this process; without ``accuracy``
        it skips the MLP, as the peer's latency-only efficiency predictor should."""
        net = self.checkpoint.supernet
        return SubnetPredictor(
            self.space,
            net.in_channels,
            net.num_classes,
            profile,
            self.accuracy if accuracy else None,
            self.checkpoint.version if accuracy else None,
        )


def with_budget(
    profile: HardwareProfile, budget_ms: float, name: str | None = None
) -> HardwareProfile:
    """``profile`` with another latency budget (and name): a distinct profile to search."""
    constraints = dataclasses.replace(profile.constraints, latency_budget_ms=budget_ms)
    return dataclasses.replace(profile, name=name or profile.name, constraints=constraints)


def latency_range(
    predictor: SubnetPredictor, space: SearchSpace, budget: Budget
) -> tuple[float, float]:
    """Predicted latency of the fastest and slowest subnets at the budget's resolutions."""
    ends = [
        dataclasses.replace(arch, resolution=r)
        for arch in (ArchConfig.min(space), ArchConfig.max(space))
        for r in budget.resolutions
    ]
    latency = predictor.predict(ends).latency_ms
    return float(latency.min()), float(latency.max())


def median(values: Sequence[float]) -> float | None:
    """The median, or None for no values (a section whose every row failed)."""
    return statistics.median(values) if values else None


def _r(value: float | None, digits: int = 4) -> float | None:
    """Rounded for the JSON report, None passed through."""
    return None if value is None else round(value, digits)


def section(measure: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``measure(*args)`` with its wall time and the load average around it: on a shared
    machine a section's figures are only comparable with the load they were taken under."""
    before, started = load_average(), time.perf_counter()
    result = measure(*args)
    result["section"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "load_average_before": before,
        "load_average_after": load_average(),
    }
    return result


def section_line(result: dict[str, Any], console: Console) -> None:
    """The wall time and load a section ran under, below its figures."""
    info = result["section"]
    console.print(
        f"[dim]section: {info['seconds']:.0f} s; load average (1 min, this benchmark's "
        f"processes included) before / after {info['load_average_before']} / "
        f"{info['load_average_after']}[/dim]"
    )


def load_average() -> float | None:
    """1-minute load average: timings on a shared 2-core VM only mean much beside it."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


# --------------------------------------------------------------------------- 1. end to end


def summary_row(result: Specialization, budget_ms: float, seconds: float) -> dict[str, Any]:
    """One specialization's figures, with the wall time the caller saw (``seconds``)."""
    stats = result.statistics
    return {
        "profile": result.profile_name,
        "budget_ms": budget_ms,
        "seconds": round(seconds, 3),
        "search_seconds": stats["search_seconds"],
        "rerank_seconds": stats["rerank_seconds"],
        "export_seconds": stats["export_seconds"],
        "generations": stats["generations"],
        "stop_reason": stats["stop_reason"],
        "candidates_evaluated": stats["candidates_evaluated"],
        "predicted_top1": round(result.predicted.top1, 5),
        "measured_top1": round(result.measured_top1, 5),
        "predicted_latency_ms": round(result.predicted.latency_ms, 4),
        "measured_latency_ms": _r(result.measured_latency_ms),
        "arch": str(result.arch),
    }


def end_to_end(specializer: Specializer, setup: Setup, rounds: int = 1) -> dict[str, Any]:
    """Section 1: every example profile searched afresh, then the same request cached;
    ``rounds`` times over, profile after profile, for a median of more than a few."""
    from ofa_fleet.search.specializer import SpecializeOptions

    rows = []
    for profile in [p for _ in range(rounds) for p in setup.profiles]:
        budget = profile.constraints.latency_budget_ms
        log(f"1. specialize {profile.name} (budget {budget:g} ms, use_cache=False) ...")
        try:
            started = time.perf_counter()
            result = specializer.specialize(
                profile, SpecializeOptions(seed=setup.seed, use_cache=False)
            )
            row = summary_row(result, budget, time.perf_counter() - started)
            started = time.perf_counter()
            repeat = specializer.specialize(profile, SpecializeOptions(seed=setup.seed))
            row["cached_seconds"] = round(time.perf_counter() - started, 6)
            row["cached_hit"] = repeat.from_cache
        except OfaFleetError as exc:
            row = {"profile": profile.name, "budget_ms": budget, "error": str(exc)}
        rows.append(row)
    seconds = [r["seconds"] for r in rows if "seconds" in r]
    cached = [r["cached_seconds"] for r in rows if "cached_seconds" in r]
    return {
        "rows": rows,
        "median_seconds": _r(median(seconds), 3),
        "max_seconds": _r(max(seconds, default=None), 3),
        "median_cached_seconds": _r(median(cached), 6),
        "aim": f"median and max < {AIM_E2E_SECONDS:g} s",
        "pass": bool(seconds) and len(seconds) == len(rows) and max(seconds) < AIM_E2E_SECONDS,
    }


# --------------------------------------------------------------------------- 2. the peer


class PeerTimeoutError(Exception):
    """The peer's search ran past ``--peer-timeout`` (it redraws children until they fit)."""


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Raise `PeerTimeoutError` in this (main) thread after ``seconds``; no-op where impossible."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise PeerTimeoutError

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def sample_arch(sample: dict[str, Any], space: SearchSpace) -> ArchConfig:
    """The peer's sample as our arch: stage ``s`` uses the first ``d[s]`` of its slots.

    The peer lays its ``ks`` and ``e`` out stage by stage with the space's maximum depth
    per stage, exactly as our `Genome` does.
    """
    return Genome(
        int(sample["image_size"]),
        tuple(int(d) for d in sample["d"]),
        tuple(int(k) for k in sample["ks"]),
        tuple(int(e) for e in sample["e"]),
    ).arch(space)


class PeerEfficiency:
    """The peer's efficiency predictor: our predicted latency, +inf over size or memory."""

    def __init__(self, predictor: SubnetPredictor, budget: Budget, space: SearchSpace) -> None:
        self.predictor, self.budget, self.space = predictor, budget, space
        self.calls = 0

    def get_efficiency(self, sample: dict[str, Any]) -> float:
        self.calls += 1
        p = self.predictor.predict([sample_arch(sample, self.space)])
        if (
            p.model_bytes[0] > self.budget.max_model_bytes
            or p.peak_memory_bytes[0] > self.budget.max_peak_memory_bytes
        ):
            return math.inf
        return float(p.latency_ms[0])


class PeerAccuracy:
    """The peer's accuracy predictor: ours, behind the peer's own arch encoder."""

    def __init__(self, accuracy: AccuracyPredictor, encoder: Any, space: SearchSpace) -> None:
        self.accuracy, self.arch_encoder, self.space = accuracy, encoder, space
        self.predicted = 0

    def predict_acc(self, samples: list[dict[str, Any]]) -> torch.Tensor:
        self.predicted += len(samples)
        archs = [sample_arch(s, self.space) for s in samples]
        return torch.from_numpy(np.asarray(self.accuracy.predict(archs)))


def run_peer(
    peer: peer_ofa.Peer,
    setup: Setup,
    latency_predictor: SubnetPredictor,
    scorer: SubnetPredictor,
    budget: Budget,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One seeded run of the peer's EvolutionFinder on our predictors, its answer re-scored.

    The peer's own top-1 is kept beside ours for its answer (``peer_reported_top1``),
    a check that the adapters hand it exactly our objective.
    """
    space = setup.space
    encoder = peer.objects["MobileNetArchEncoder"](
        image_size_list=list(budget.resolutions),
        ks_list=list(space.kernel_sizes),
        expand_list=list(space.expand_ratios),
        depth_list=list(space.depths),
        n_stage=space.num_stages,
    )
    efficiency = PeerEfficiency(latency_predictor, budget, space)
    accuracy = PeerAccuracy(setup.accuracy, encoder, space)
    finder = peer.objects["EvolutionFinder"](
        efficiency,
        accuracy,
        population_size=args.peer_population,
        max_time_budget=args.peer_generations,
    )
    random.seed(setup.seed)
    np.random.seed(setup.seed)
    started = time.perf_counter()
    try:
        # It prints "Iter: ... Acc: ..." every 100 generations even with verbose=False.
        with alarm(args.peer_timeout), contextlib.redirect_stdout(io.StringIO()):
            _, best_info = finder.run_evolution_search(budget.latency_ms, verbose=False)
    except PeerTimeoutError:
        return {
            "status": f"timed out after {args.peer_timeout:g} s",
            "seconds": round(time.perf_counter() - started, 3),
            "efficiency_calls": efficiency.calls,
        }
    seconds = time.perf_counter() - started
    peer_top1, sample, _ = best_info
    arch = sample_arch(sample, space)
    (rescored,) = candidates(scorer.predict([arch]))
    return {
        "status": "ok",
        "top1": round(float(rescored.top1), 5),
        "peer_reported_top1": round(float(peer_top1), 5),
        "latency_ms": round(rescored.latency_ms, 4),
        "within_budget": budget.admits(rescored),
        "seconds": round(seconds, 3),
        "efficiency_calls": efficiency.calls,
        "accuracy_predictions": accuracy.predicted,
        "arch": str(arch),
    }


def against_peer(setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    """Section 2: peer, ours and random search on every profile and tighter budgets."""
    if args.no_peer:
        peer = peer_ofa.Peer(False, "not loaded (--no-peer)")
    else:
        log("2. loading the peer (ofa.nas.search_algorithm.EvolutionFinder) ...")
        peer = peer_ofa.load_peer(PEER_FINDER, PEER_ENCODER, log=log)
        if not peer.available:
            log(f"[yellow]peer unavailable:[/yellow] {peer.reason}; its columns read 'unavailable'")
    fractions = [float(f) for f in args.tighter.split(",") if f.strip()]
    rows = []
    for profile in setup.profiles:
        scorer = setup.predictor(profile)
        latency_only = setup.predictor(profile, accuracy=False)
        base = Budget.of(profile.constraints, setup.space)
        fastest, slowest = latency_range(latency_only, setup.space, base)
        top = min(base.latency_ms, slowest)
        budgets = [("profile", base.latency_ms)] + [
            (f"{f:g} of the way", fastest + f * (top - fastest)) for f in fractions
        ]
        for label, latency_ms in budgets:
            budget = dataclasses.replace(base, latency_ms=latency_ms)
            log(f"2. {profile.name}, budget {latency_ms:.3f} ms ({label}): ours ...")
            row: dict[str, Any] = {
                "profile": profile.name,
                "budget": label,
                "budget_ms": round(latency_ms, 4),
                "fastest_ms": round(fastest, 4),
                "slowest_ms": round(slowest, 4),
            }
            started = time.perf_counter()
            try:
                outcome = EvolutionSearch(
                    setup.space, scorer.predict, budget, EvolutionSettings(seed=setup.seed)
                ).run()
            except InfeasibleProfileError as exc:
                row["ours"] = {"status": f"infeasible: {exc}"}
                rows.append(row)
                continue
            stats = outcome.statistics
            row["ours"] = {
                "status": "ok",
                "top1": round(outcome.best.top1, 5),
                "latency_ms": round(outcome.best.latency_ms, 4),
                "seconds": round(time.perf_counter() - started, 3),
                "evaluated": stats.evaluated,
                "generations": stats.generations,
                "stop_reason": stats.stop_reason,
                "arch": str(outcome.best.arch),
            }
            log(f"2. {profile.name}, budget {latency_ms:.3f} ms: random search ...")
            started = time.perf_counter()
            best = random_search(
                setup.space, scorer.predict, budget, stats.evaluated, seed=setup.seed
            )
            row["random"] = {
                "status": "ok",
                "top1": round(best.top1, 5),
                "latency_ms": round(best.latency_ms, 4),
                "seconds": round(time.perf_counter() - started, 3),
                "evaluated": stats.evaluated,
            }
            if peer.available:
                log(f"2. {profile.name}, budget {latency_ms:.3f} ms: peer EvolutionFinder ...")
                row["peer"] = run_peer(peer, setup, latency_only, scorer, budget, args)
            else:
                row["peer"] = {"status": "unavailable"}
            ours, rand, other = row["ours"], row["random"], row["peer"]
            ok = other["status"] == "ok"
            row["time_ratio_ours_over_peer"] = (
                _r(ours["seconds"] / other["seconds"]) if ok and other["seconds"] > 0 else None
            )
            row["top1_ours_minus_peer"] = _r(ours["top1"] - other["top1"], 5) if ok else None
            row["top1_random_minus_ours"] = _r(rand["top1"] - ours["top1"], 5)
            rows.append(row)
    compared = [r for r in rows if r.get("top1_ours_minus_peer") is not None]
    ratios = [r["time_ratio_ours_over_peer"] for r in compared]
    at_least = [r for r in compared if r["top1_ours_minus_peer"] >= -1e-5]
    return {
        "peer": peer.to_dict(),
        "settings": {
            "peer_population": args.peer_population,
            "peer_generations": args.peer_generations,
            "ours": dataclasses.asdict(EvolutionSettings(seed=setup.seed)),
            "tighter_fractions": fractions,
            "seed": setup.seed,
        },
        "rows": rows,
        "compared": len(compared),
        "ours_at_least_as_good": len(at_least),
        "median_time_ratio": _r(median(ratios)),
        "max_time_ratio": _r(max(ratios, default=None)),
        "aim": f"top-1 ours >= peer in every row, time ours/peer <= {AIM_TIME_RATIO:g}",
        "pass": bool(compared) and len(at_least) == len(compared) and max(ratios) <= AIM_TIME_RATIO,
    }


# --------------------------------------------------------------------------- 3. scaling


def evolution_overhead(
    specializer: Specializer, setup: Setup, args: argparse.Namespace
) -> dict[str, Any]:
    """Section 3a: one evolution per profile in this process (its predictor called
    directly: the ceiling) and as the service runs it, a Ray task streaming its progress
    back (`SearchWorkers.evolve`). Interleaved repeats, so a change in the machine's load
    hits both alike; the median repeat is reported. Same seed, same figures: the two must
    find the same best arch, which is checked."""
    from ofa_fleet.search.specializer import SpecializeOptions

    settings = SpecializeOptions(seed=setup.seed).evolution()
    runs: dict[str, Callable[[HardwareProfile, Budget], Any]] = {
        "in-process": lambda profile, budget: EvolutionSearch(
            setup.space, setup.predictor(profile).predict, budget, settings
        ).run(),
        "ray task": lambda profile, budget: (
            specializer.workers.evolve(profile, settings, budget, lambda _: None).outcome
        ),
    }
    budgets = {p.name: Budget.of(p.constraints, setup.space) for p in setup.profiles}
    log("3. evolution: warming each way (every profile's predictor built) ...")
    for run in runs.values():
        for profile in setup.profiles:
            run(profile, budgets[profile.name])
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(args.scale_repeats):
        log(f"3. evolution of {len(setup.profiles)} profiles each way, repeat {repeat + 1} ...")
        for name, run in runs.items():
            started = time.perf_counter()
            bests = [str(run(p, budgets[p.name]).best.arch) for p in setup.profiles]
            seconds[name].append((time.perf_counter() - started) / len(setup.profiles))
            if name == "in-process":
                reference = bests
            elif bests != reference:
                raise SystemExit(f"the Ray task found {bests}, in process {reference}")
    med = {name: statistics.median(v) for name, v in seconds.items()}
    return {
        "profiles": [p.name for p in setup.profiles],
        "repeats": args.scale_repeats,
        "seconds_per_evolution": {name: round(v, 4) for name, v in med.items()},
        "all_repeats": {name: [round(x, 4) for x in v] for name, v in seconds.items()},
        "ray_vs_in_process": round(med["ray task"] / med["in-process"], 3),
    }


def concurrency(specializer: Specializer, setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    """Section 3b: distinct profiles one after another, then all at once from threads."""
    from ofa_fleet.search.specializer import SpecializeOptions

    profiles = []
    for i in range(args.concurrent):
        base = setup.profiles[i % len(setup.profiles)]
        factor = CONCURRENT_BUDGET_FACTORS[(i // len(setup.profiles)) % 4]
        factor *= 1.0 - 0.01 * (i // (4 * len(setup.profiles)))  # distinct beyond 4 rounds
        budget = round(base.constraints.latency_budget_ms * factor, 4)
        profiles.append(with_budget(base, budget, f"{base.name}-{budget:g}ms"))
    options = SpecializeOptions(seed=setup.seed, use_cache=False)
    log(f"3. building {len(profiles)} profiles' predictors in the workers ...")
    tiny = EvolutionSettings(population=4, generations=1, seed=setup.seed)
    with ThreadPoolExecutor(max_workers=specializer.workers.slots) as pool:
        for profile in profiles:  # one short evolution per slot at once: each on its worker
            budget = Budget.of(profile.constraints, setup.space)
            list(
                pool.map(
                    lambda _, p=profile, b=budget: specializer.workers.evolve(
                        p, tiny, b, lambda _: None
                    ),
                    range(specializer.workers.slots),
                )
            )

    def one(profile: HardwareProfile) -> tuple[float, str | None]:
        started = time.perf_counter()
        try:
            specializer.specialize(profile, options)
        except OfaFleetError as exc:
            return time.perf_counter() - started, f"{profile.name}: {exc}"
        return time.perf_counter() - started, None

    log(f"3. {len(profiles)} profiles one after another ...")
    started = time.perf_counter()
    serial = [one(p) for p in profiles]
    serial_total = time.perf_counter() - started
    log(f"3. {len(profiles)} profiles at once, from {len(profiles)} threads ...")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(profiles)) as pool:
        parallel = list(pool.map(one, profiles))
    parallel_total = time.perf_counter() - started
    errors = [e for _, e in serial + parallel if e is not None]
    return {
        "profiles": [
            {"name": p.name, "budget_ms": p.constraints.latency_budget_ms} for p in profiles
        ],
        "serial_total_seconds": round(serial_total, 3),
        "concurrent_total_seconds": round(parallel_total, 3),
        "speedup": round(serial_total / parallel_total, 3),
        "serial_request_seconds": {
            "median": _r(median([s for s, _ in serial]), 3),
            "max": round(max(s for s, _ in serial), 3),
        },
        "concurrent_request_seconds": {
            "median": _r(median([s for s, _ in parallel]), 3),
            "max": round(max(s for s, _ in parallel), 3),
        },
        "errors": errors,
    }


# --------------------------------------------------------------------------- 4. quality


def latency_table(
    setup: Setup, threads: int, args: argparse.Namespace
) -> tuple[LatencyTable, dict[str, Any]]:
    """This machine's table for ``threads``: the cached one when it fits, else measured.

    Profiling takes seconds on an idle machine but a minute or more when other processes
    hold the cores (two onnxruntime threads then wait on each other), hence the cache.
    """
    from ofa_fleet.predictors.device_profiling import profile_device

    net = setup.checkpoint.supernet
    path = args.lut_dir / f"latency-table-{setup.space.fingerprint}-t{threads}.json"
    if path.is_file():
        table = load_latency_table(path)
        if (
            table.space_fingerprint == setup.space.fingerprint
            and table.threads == threads
            and table.in_channels == net.in_channels
            and table.num_classes == net.num_classes
        ):
            return table, {"path": str(path), "reused": True, "created": table.created}
    log(f"4. profiling this machine, {threads} thread(s), {args.lut_rounds} rounds ...")
    started = time.perf_counter()
    table = profile_device(
        setup.space, net.in_channels, net.num_classes, threads=threads, rounds=args.lut_rounds
    )
    seconds = time.perf_counter() - started
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(table.to_dict(), indent=1))
    partial.replace(path)
    return table, {
        "path": str(path),
        "reused": False,
        "created": table.created,
        "seconds": round(seconds, 1),
    }


def quality(specializer: Specializer, setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    """Section 4: searches on this machine's tables, the winners timed on this machine."""
    from ofa_fleet.search.specializer import SpecializeOptions

    threads_list = [int(t) for t in args.quality_threads.split(",") if t.strip()]
    fractions = QUALITY_FRACTIONS
    if args.quality_budgets != len(fractions):
        n = args.quality_budgets
        fractions = tuple(0.1 + 0.9 * i / max(1, n - 1) for i in range(n))
    tables, rows = [], []
    for threads in threads_list:
        table, info = latency_table(setup, threads, args)
        base = local_profile(threads, table)
        fastest, slowest = latency_range(
            setup.predictor(base, accuracy=False),
            setup.space,
            Budget.of(base.constraints, setup.space),
        )
        tables.append(
            {
                "threads": threads,
                "fastest_ms": round(fastest, 4),
                "slowest_ms": round(slowest, 4),
                **info,
            }
        )
        for fraction in fractions:
            budget_ms = round(fastest + fraction * (slowest - fastest), 4)
            profile = with_budget(base, budget_ms)
            log(f"4. {threads} thread(s), budget {budget_ms:.3f} ms: specialize, measure ...")
            row: dict[str, Any] = {"threads": threads, "budget_ms": budget_ms}
            try:
                started = time.perf_counter()
                result = specializer.specialize(
                    profile,
                    SpecializeOptions(seed=setup.seed, measure_latency=True, use_cache=False),
                )
            except OfaFleetError as exc:
                row["error"] = str(exc)
                rows.append(row)
                continue
            measured = result.measured_latency_ms
            predicted = result.predicted.latency_ms
            row.update(
                {
                    "seconds": round(time.perf_counter() - started, 3),
                    "predicted_ms": round(predicted, 4),
                    "measured_ms": _r(measured),
                    "measured_over_budget": _r(None if measured is None else measured / budget_ms),
                    "measured_over_predicted": _r(
                        None if measured is None else measured / predicted
                    ),
                    "within_budget": measured is not None and measured <= budget_ms,
                    "measured_top1": round(result.measured_top1, 5),
                    "predicted_top1": round(result.predicted.top1, 5),
                    "latency_source": result.latency_source,
                    "arch": str(result.arch),
                }
            )
            rows.append(row)
    ratios = [r["measured_over_budget"] for r in rows if r.get("measured_over_budget") is not None]
    return {
        "tables": tables,
        "rows": rows,
        "all_within_budget": bool(rows) and all(r.get("within_budget") for r in rows),
        "within_budget": sum(bool(r.get("within_budget")) for r in rows),
        "median_measured_over_budget": _r(median(ratios)),
        "max_measured_over_budget": _r(max(ratios, default=None)),
        "median_measured_over_predicted": _r(
            median([r["measured_over_predicted"] for r in rows if r.get("measured_over_predicted")])
        ),
    }


# --------------------------------------------------------------------------- the run


def ensure_checkpoint(args: argparse.Namespace) -> Path:
    """The checkpoint to use: a named one must exist; the default one is trained once."""
    path: Path = args.checkpoint
    if path != DEFAULT_CHECKPOINT:
        if not path.is_file():
            raise SystemExit(f"checkpoint {path} does not exist")
        return path
    from ofa_fleet.stack.supernet import ensure_trained

    if not path.is_file():
        log(f"training the demo supernet into {path} (about 2.5 minutes) ...")
    ensure_trained(path, None)
    return path


def predictor_fits(path: Path, checkpoint: Checkpoint) -> bool:
    """Whether ``path`` holds an accuracy predictor fitted for this very supernet."""
    if not path.is_file():
        return False
    try:
        AccuracyPredictor.load(path).check_compatible(checkpoint.space, checkpoint.version)
    except OfaFleetError:
        return False
    return True


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every section not skipped; the Ray ones first, the in-process peer race after Ray
    has stopped, so that idle Ray processes do not share the cores with it."""
    checkpoint_path = ensure_checkpoint(args)
    torch.set_num_threads(args.threads)
    checkpoint = load_checkpoint(checkpoint_path)
    profiles = [load_profile(p) for p in sorted(args.profiles.glob("*.yaml"))]
    if not profiles:
        raise SystemExit(f"no profiles (*.yaml) in {args.profiles}")
    from ofa_fleet.search.accuracy_source import predictor_path as sidecar

    predictor_path = args.predictor or sidecar(checkpoint_path)
    ray_sections = not (args.skip_e2e and args.skip_scaling and args.skip_quality)
    report: dict[str, Any] = {
        "benchmark": "search_specialize",
        "checkpoint": str(checkpoint_path),
        "supernet_version": checkpoint.version,
        "profiles": [p.name for p in profiles],
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch_threads": args.threads,
            "load_average_before": load_average(),
        },
    }
    started_all = time.perf_counter()
    if ray_sections or not predictor_fits(predictor_path, checkpoint):
        # The Ray sections need the service; the peer section alone needs it only to fit
        # the accuracy predictor (load_specializer fits it and keeps it beside the CKPT).
        from ofa_fleet.search.ray_runtime import cluster_cpus, start_ray, stop_ray
        from ofa_fleet.search.service import load_specializer

        log("starting Ray, loading the supernet, warming the workers ...")
        started = time.perf_counter()
        start_ray(args.ray_address)
        try:
            specializer = load_specializer(
                checkpoint_path,
                args.predictor,
                args.data,
                args.workers,
                lambda done, total: log(f"fitting the accuracy predictor: {done}/{total}"),
            )
            report["load"] = {
                "seconds": round(time.perf_counter() - started, 2),
                "ray_cpus": cluster_cpus(),
                "worker_slots": specializer.workers.slots,
            }
            setup = Setup(checkpoint, AccuracyPredictor.load(predictor_path), profiles, args.seed)
            if not args.skip_e2e:
                report["end_to_end"] = section(end_to_end, specializer, setup, args.e2e_rounds)
            if not args.skip_scaling:
                report["scaling"] = {
                    "evolution": section(evolution_overhead, specializer, setup, args),
                    "concurrency": section(concurrency, specializer, setup, args),
                }
            if not args.skip_quality:
                report["quality"] = section(quality, specializer, setup, args)
        finally:
            stop_ray()
    else:
        setup = Setup(checkpoint, AccuracyPredictor.load(predictor_path), profiles, args.seed)
    setup.accuracy.check_compatible(checkpoint.space, checkpoint.version)
    if not args.skip_peer:
        report["peer"] = section(against_peer, setup, args)
    report["machine"]["load_average_after"] = load_average()
    report["total_seconds"] = round(time.perf_counter() - started_all, 1)
    return report


# --------------------------------------------------------------------------- output


def _verdict(ok: bool) -> str:
    return "[green]PASS[/green]" if ok else "[red]FAIL[/red]"


def _f(value: float | None, spec: str = ".3f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def print_report(report: dict[str, Any], console: Console) -> None:
    """The report as rich tables, each aim with its verdict."""
    machine = report["machine"]
    console.print(
        f"[bold]Search service[/bold], supernet {report['supernet_version']} "
        f"({report['checkpoint']}), profiles {', '.join(report['profiles'])}; "
        f"{machine['cpu_count']} CPUs, torch {machine['torch_threads']} thread(s) in-process; "
        f"load average before/after {machine['load_average_before']} / "
        f"{machine.get('load_average_after')}; {report['total_seconds']:.0f} s in all"
    )
    if "load" in report:
        load = report["load"]
        console.print(
            f"load: Ray start + supernet + accuracy predictor + warming "
            f"{load['worker_slots']} worker slots ({load['ray_cpus']} Ray CPUs): "
            f"{load['seconds']:.1f} s"
        )
    if "end_to_end" in report:
        _print_end_to_end(report["end_to_end"], console)
    if "peer" in report:
        _print_peer(report["peer"], console)
    if "scaling" in report:
        _print_scaling(report["scaling"], console)
    if "quality" in report:
        _print_quality(report["quality"], console)


def _print_end_to_end(e2e: dict[str, Any], console: Console) -> None:
    table = Table(
        title="1. end to end on warm workers: specialize(profile, use_cache=False); "
        "baseline: the same request answered from the cache",
        title_justify="left",
    )
    columns = (
        "profile", "budget\nms", "total\ns", "search\ns", "rerank\ns", "export\ns",
        "gens", "scored", "top-1\npred", "top-1\nmeasured", "latency\npred ms", "cached\nms",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "profile" else "right")
    for row in e2e["rows"]:
        if "error" in row:
            table.add_row(row["profile"], f"{row['budget_ms']:g}", f"[red]{row['error']}[/red]")
            continue
        table.add_row(
            row["profile"], f"{row['budget_ms']:g}", f"{row['seconds']:.2f}",
            f"{row['search_seconds']:.2f}", f"{row['rerank_seconds']:.2f}",
            f"{row['export_seconds']:.2f}", f"{row['generations']} ({row['stop_reason']})",
            f"{row['candidates_evaluated']:,}", f"{row['predicted_top1']:.4f}",
            f"{row['measured_top1']:.4f}", f"{row['predicted_latency_ms']:.3f}",
            f"{row['cached_seconds'] * 1000:.3f}",
        )  # fmt: skip
    console.print(table)
    missed = [r["profile"] for r in e2e["rows"] if r.get("cached_hit") is False]
    if missed:
        console.print(f"[yellow]the repeat missed the cache for {', '.join(missed)}[/yellow]")
    median_cached = e2e["median_cached_seconds"]
    speedup = (
        f" ({e2e['median_seconds'] / median_cached:,.0f}x faster)"
        if median_cached and e2e["median_seconds"]
        else ""
    )
    console.print(
        f"{_verdict(e2e['pass'])} specialize median {_f(e2e['median_seconds'], '.2f')} s, "
        f"max {_f(e2e['max_seconds'], '.2f')} s (aim {e2e['aim']}); cached repeat median "
        f"{_f(None if median_cached is None else median_cached * 1000, '.3f')} ms{speedup}"
    )
    section_line(e2e, console)


def _peer_cell(cell: dict[str, Any], key: str, spec: str) -> str:
    if cell["status"] == "ok" or (key == "seconds" and "seconds" in cell):
        return format(cell[key], spec)
    return f"[dim]{cell['status']}[/dim]" if key == "top1" else "-"


def _print_peer(result: dict[str, Any], console: Console) -> None:
    peer = result["peer"]
    settings = result["settings"]
    if peer["available"]:
        console.print(
            f"peer: {peer['package']} (found {peer['version']}) from {peer['location']}"
            + (f"; stand-ins for {', '.join(peer['stand_ins'])}" if peer["stand_ins"] else "")
        )
    else:
        console.print(f"[yellow]peer unavailable:[/yellow] {peer['reason']}")
    ours = settings["ours"]
    table = Table(
        title=f"2. search on the same predictors: peer EvolutionFinder (population "
        f"{settings['peer_population']}, {settings['peer_generations']} generations) vs ours "
        f"(population {ours['population']}, <= {ours['generations']} generations, patience "
        f"{ours['patience']}) vs random search (as many candidates as ours scored)",
        title_justify="left",
    )
    columns = (
        "profile", "budget ms", "peer\ntop-1", "peer\ns", "ours\ntop-1", "ours\ns", "ours\nscored",
        "random\ntop-1", "random\ns", "ours/peer\ntime", "top-1\nours-peer", "top-1\nrand-ours",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "profile" else "right")
    for row in result["rows"]:
        label = f"{row['budget_ms']:.3f} ({row['budget']})"
        ours_cell = row["ours"]
        if ours_cell["status"] != "ok":
            table.add_row(row["profile"], label, "", "", f"[red]{ours_cell['status']}[/red]")
            continue
        peer_cell, rand = row["peer"], row["random"]
        flag = ""
        if peer_cell["status"] == "ok" and not peer_cell["within_budget"]:
            flag = " [red](over budget)[/red]"
        table.add_row(
            row["profile"], label,
            _peer_cell(peer_cell, "top1", ".5f") + flag, _peer_cell(peer_cell, "seconds", ".2f"),
            f"{ours_cell['top1']:.5f}", f"{ours_cell['seconds']:.2f}",
            f"{ours_cell['evaluated']:,}", f"{rand['top1']:.5f}", f"{rand['seconds']:.2f}",
            _f(row["time_ratio_ours_over_peer"], ".3f"),
            _f(row["top1_ours_minus_peer"], "+.5f"), _f(row["top1_random_minus_ours"], "+.5f"),
        )  # fmt: skip
    console.print(table)
    console.print(
        "budgets: each profile's own, and "
        + " / ".join(f"{f:g}" for f in settings["tighter_fractions"])
        + " of the way from the fastest subnet's predicted latency to it (to the slowest "
        "subnet's, when the budget admits every subnet); top-1 is predicted, the peer's "
        "answer scored again by our predictor"
    )
    if result["compared"]:
        console.print(
            f"{_verdict(result['pass'])} ours at least as accurate as the peer in "
            f"{result['ours_at_least_as_good']}/{result['compared']} rows; time ours/peer "
            f"median {result['median_time_ratio']:.3f}, max {result['max_time_ratio']:.3f} "
            f"(aim {result['aim']})"
        )
    else:
        console.print("[yellow]no row compared with the peer[/yellow]")
    section_line(result, console)


def _print_scaling(result: dict[str, Any], console: Console) -> None:
    evolution = result["evolution"]
    table = Table(title="3a. one evolution, seconds (median per profile)", title_justify="left")
    for column in ("where", "seconds", "vs in-process", "repeats"):
        table.add_column(column, justify="left" if column == "where" else "right")
    ceiling = evolution["seconds_per_evolution"]["in-process"]
    for name, value in evolution["seconds_per_evolution"].items():
        table.add_row(
            name + (" (ceiling)" if name == "in-process" else ""),
            f"{value:.3f}",
            f"{value / ceiling:.2f}",
            ", ".join(f"{v:.3f}" for v in evolution["all_repeats"][name]),
        )
    console.print(table)
    console.print(
        f"profiles {', '.join(evolution['profiles'])}, {evolution['repeats']} interleaved "
        "repeats; both found the same best arch for every profile"
    )
    section_line(evolution, console)
    conc = result["concurrency"]
    table = Table(
        title=f"3b. {len(conc['profiles'])} distinct profiles, specialize(use_cache=False)",
        title_justify="left",
    )
    for column in ("mode", "total s", "request median s", "request max s"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode, key in (("one after another", "serial"), ("all at once (threads)", "concurrent")):
        request = conc[f"{key}_request_seconds"]
        table.add_row(
            mode,
            f"{conc[f'{key}_total_seconds']:.2f}",
            _f(request["median"], ".2f"),
            _f(request["max"], ".2f"),
        )
    console.print(table)
    console.print(
        f"profiles: the example profiles with budgets x "
        f"{'/'.join(f'{f:g}' for f in CONCURRENT_BUDGET_FACTORS)}; concurrent speedup "
        f"(serial total / concurrent total): {conc['speedup']:.2f}x"
    )
    for error in conc["errors"]:
        console.print(f"[red]error:[/red] {error}")
    section_line(conc, console)


def _print_quality(result: dict[str, Any], console: Console) -> None:
    for info in result["tables"]:
        source = (
            f"reused {info['path']} (measured {info['created']})"
            if info["reused"]
            else f"measured now in {info['seconds']:.0f} s, saved to {info['path']}"
        )
        console.print(
            f"latency table, {info['threads']} thread(s): {source}; predicted subnet range "
            f"{info['fastest_ms']:.3f}-{info['slowest_ms']:.3f} ms"
        )
    table = Table(
        title="4. search on this machine's latency table: winner timed in onnxruntime "
        "(measure_latency=True)",
        title_justify="left",
    )
    columns = (
        "threads", "budget\nms", "predicted\nms", "measured\nms", "measured\n/budget",
        "within", "measured\n/predicted", "top-1\nmeasured", "s", "arch",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "arch" else "right")
    for row in result["rows"]:
        if "error" in row:
            table.add_row(
                str(row["threads"]), f"{row['budget_ms']:.3f}", f"[red]{row['error']}[/red]"
            )
            continue
        within = "[green]yes[/green]" if row["within_budget"] else "[red]no[/red]"
        table.add_row(
            str(row["threads"]), f"{row['budget_ms']:.3f}", f"{row['predicted_ms']:.3f}",
            _f(row["measured_ms"]), _f(row["measured_over_budget"], ".2f"), within,
            _f(row["measured_over_predicted"], ".2f"), f"{row['measured_top1']:.4f}",
            f"{row['seconds']:.1f}", row["arch"],
        )  # fmt: skip
    console.print(table)
    console.print(
        (
            "[green]all within budget[/green]"
            if result["all_within_budget"]
            else "[yellow]not all within budget[/yellow]"
        )
        + f" ({result['within_budget']}/{len(result['rows'])}); measured/budget median "
        f"{_f(result['median_measured_over_budget'], '.2f')}, max "
        f"{_f(result['max_measured_over_budget'], '.2f')}; measured/predicted median "
        f"{_f(result['median_measured_over_predicted'], '.2f')}"
    )
    section_line(result, console)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=DEFAULT_CHECKPOINT,
        help=f"supernet (default {DEFAULT_CHECKPOINT}, trained when missing)",
    )
    parser.add_argument(
        "--predictor", type=Path, help="accuracy predictor (default: CKPT.predictor, fitted once)"
    )
    parser.add_argument("--data", help="data for re-ranking (default: the checkpoint's)")
    parser.add_argument("--profiles", type=Path, default=ROOT / "deploy" / "profiles")
    parser.add_argument(
        "--ray-address",
        default=os.environ.get("RAY_ADDRESS"),
        help="join this Ray cluster (env RAY_ADDRESS); default: start a local Ray",
    )
    parser.add_argument("--workers", type=int, help="Ray task slots (default: the cluster's CPUs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--e2e-rounds", type=int, default=1, help="1. every profile this many times (median of all)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    peer = parser.add_argument_group("2. against the peer")
    peer.add_argument("--peer-population", type=int, default=100)
    peer.add_argument("--peer-generations", type=int, default=500)
    peer.add_argument(
        "--peer-timeout", type=float, default=120.0, help="seconds per peer search (0: none)"
    )
    peer.add_argument(
        "--tighter",
        default="0.25,0.1",
        help="extra budgets: fractions of the way from the fastest subnet to the budget",
    )
    peer.add_argument("--no-peer", action="store_true", help="ours and random search only")
    scaling = parser.add_argument_group("3. Ray scaling")
    scaling.add_argument("--scale-repeats", type=int, default=3)
    scaling.add_argument("--concurrent", type=int, default=10, help="distinct profiles at once")
    quality_group = parser.add_argument_group("4. search quality on this machine")
    quality_group.add_argument(
        "--lut-dir", type=Path, default=Path("runs/bench"), help="latency tables, reused"
    )
    quality_group.add_argument("--lut-rounds", type=int, default=5)
    quality_group.add_argument("--quality-threads", default="1,2")
    quality_group.add_argument("--quality-budgets", type=int, default=len(QUALITY_FRACTIONS))
    for section in ("e2e", "peer", "scaling", "quality"):
        parser.add_argument(f"--skip-{section}", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    positive = (
        "threads", "peer_population", "peer_generations", "scale_repeats", "concurrent",
        "lut_rounds", "quality_budgets",
    )  # fmt: skip
    for name in positive:
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.workers is not None and args.workers <= 0:
        parser.error("--workers must be positive")
    try:
        fractions = [float(f) for f in args.tighter.split(",") if f.strip()]
        threads = [int(t) for t in args.quality_threads.split(",") if t.strip()]
    except ValueError as exc:
        parser.error(f"--tighter / --quality-threads: {exc}")
    if any(not 0.0 < f <= 1.0 for f in fractions):
        parser.error("--tighter fractions must be within (0, 1]")
    if not threads or any(t <= 0 for t in threads):
        parser.error("--quality-threads must list positive thread counts")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        console = Console()
        if not console.is_terminal:  # a file or a pipe: wide enough for the tables
            console = Console(width=160)
        print_report(report, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
