"""Specialize: from a hardware profile to a verified ONNX model, in four steps.

1. evolution over predicted figures (one Ray task, scoring beside its predictor);
2. the best few re-ranked by real held-out top-1 (extract, recalibrate BatchNorm,
   evaluate), because the accuracy predictor is an estimate with a known error;
3. the winner exported to ONNX and checked against PyTorch in onnxruntime: done inside
   step 2, where each re-rank task exports the best of its share while that subnet is
   still built (the "export" stage is then taking that model, and timing it when asked);
4. the result kept in a cache, so an identical request for the same supernet is answered
   without searching again.

Each specialization is metered: its driver (the calling thread, which shares its process
with other calls, hence ``scope="thread"``) and every Ray task it ran, measured in the
worker (`search.task_cost`). Its `EnergyCost` travels with the result, and a
cached answer carries the cost of the search that produced it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ofa_fleet.carbon.cost import ZERO, EnergyCost
from ofa_fleet.carbon.meter import EnergyModel
from ofa_fleet.carbon.supernet_ledger import SupernetLedger
from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.search import worker
from ofa_fleet.search.candidates import Budget, Candidate
from ofa_fleet.search.evolution import EvolutionSettings, Progress
from ofa_fleet.search.result_cache import ResultCache, cache_key
from ofa_fleet.search.task_cost import TaskTally
from ofa_fleet.search.workers import SearchWorkers

MAX_POPULATION = 1000
MAX_GENERATIONS = 1000
MAX_TOP_K = 16
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class SpecializeOptions:
    """How hard to search; every field is part of the cache key except ``use_cache``.

    Attributes:
        use_cache: answer from the cache when it can; a fresh result is stored either way,
            so ``use_cache=False`` refreshes the entry.
        measure_latency: time the winner in onnxruntime on the worker that exported it,
            with the profile's threads. Only meaningful when that worker *is* the target
            hardware (``ofa-fleet search --lut`` on the machine that measured the table).
    """

    seed: int = 0
    population: int = 100
    generations: int = 100
    patience: int = 15
    top_k: int = 4
    measure_latency: bool = False
    use_cache: bool = True

    def __post_init__(self) -> None:
        if not 4 <= self.population <= MAX_POPULATION:
            raise InvalidArgumentError(
                f"options.population must be 4-{MAX_POPULATION}, got {self.population}"
            )
        if not 1 <= self.generations <= MAX_GENERATIONS:
            raise InvalidArgumentError(
                f"options.max_generations must be 1-{MAX_GENERATIONS}, got {self.generations}"
            )
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise InvalidArgumentError(f"options.rerank_top_k must be 1-{MAX_TOP_K}")
        if not 1 <= self.patience <= MAX_GENERATIONS:
            raise InvalidArgumentError(
                f"options.patience must be 1-{MAX_GENERATIONS}, got {self.patience}"
            )
        if not 0 <= self.seed <= MAX_SEED:
            # Checked here, at the edge: seeds derived from it must fit every generator
            # they reach (torch's overflows past 2^64 after the search has run).
            raise InvalidArgumentError(f"options.seed must be 0-{MAX_SEED}, got {self.seed}")

    def evolution(self) -> EvolutionSettings:
        return EvolutionSettings(
            population=self.population,
            generations=self.generations,
            patience=self.patience,
            seed=self.seed,
            top_k=self.top_k,
        )

    def cache_fields(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "population": self.population,
            "generations": self.generations,
            "patience": self.patience,
            "top_k": self.top_k,
            "measure_latency": self.measure_latency,
        }


@dataclass(frozen=True)
class Reranked:
    candidate: Candidate
    measured_top1: float


@dataclass(frozen=True)
class Specialization:
    """The chosen subnet, what was predicted and measured for it, and its model."""

    profile_name: str
    supernet_version: str
    arch: ArchConfig
    predicted: Candidate
    latency_source: str
    measured_top1: float
    measured_latency_ms: float | None
    onnx_bytes: bytes
    sha256: str
    max_abs_diff: float
    front: tuple[Candidate, ...]
    reranked: tuple[Reranked, ...]
    statistics: dict[str, Any]
    from_cache: bool = False
    # The driver thread and every Ray task of the search that produced this result
    # (the original search's, when the result came from the cache).
    cost: EnergyCost = ZERO

    def summary(self) -> dict[str, Any]:
        """Everything but the model bytes, as the CLI prints it with ``--json``."""
        return {
            "profile": self.profile_name,
            "supernet_version": self.supernet_version,
            "arch": str(self.arch),
            "predicted": self.predicted.to_dict(),
            "latency_source": self.latency_source,
            "measured": {
                "top1": round(self.measured_top1, 5),
                "latency_ms": None
                if self.measured_latency_ms is None
                else round(self.measured_latency_ms, 4),
                "model_bytes": len(self.onnx_bytes),
                "max_abs_diff": self.max_abs_diff,
            },
            "sha256": self.sha256,
            "pareto_front": [c.to_dict() for c in self.front],
            "reranked": [
                {**r.candidate.to_dict(), "measured_top1": round(r.measured_top1, 5)}
                for r in self.reranked
            ],
            "statistics": self.statistics,
            "from_cache": self.from_cache,
            "cost": self.cost.to_dict(),
        }


@dataclass(frozen=True)
class Event:
    """A progress report: ``stage`` is ``search``, ``rerank`` or ``export``."""

    stage: str
    generation: int = 0
    generations: int = 0
    evaluated: int = 0
    best: Candidate | None = None


@dataclass
class Specializer:
    """Specializes profiles against one supernet; safe to call from several threads.

    ``supernet_ledger``: what the supernet cost to make ready for search (training, the
    predictor fit), served by GetSupernet; None when it was not read.
    """

    space: SearchSpace
    workers: SearchWorkers
    in_channels: int  # the supernet's input channels and classes (its layers' shapes)
    num_classes: int
    cache: ResultCache = field(default_factory=ResultCache)
    energy: EnergyModel = field(default_factory=EnergyModel.from_environment)
    supernet_ledger: SupernetLedger | None = None

    @property
    def supernet_version(self) -> str:
        return self.workers.version

    def request_key(self, profile: HardwareProfile, options: SpecializeOptions) -> str:
        """What makes two requests the same search: the supernet, the profile's content
        and the options (hex sha256; the cache's key, and the search's operation's)."""
        return cache_key(self.supernet_version, worker.profile_key(profile), options.cache_fields())

    def specialize(
        self,
        profile: HardwareProfile,
        options: SpecializeOptions | None = None,
        on_event: Callable[[Event], None] = lambda _: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Specialization:
        options = options or SpecializeOptions()
        key = self.request_key(profile, options)
        if options.use_cache:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        tally = TaskTally()
        with self.energy.meter(scope="thread") as driver:
            result = self._search(profile, options, on_event, should_stop, tally)
        workers = tally.cost(self.energy)
        result = dataclasses.replace(
            result,
            cost=self.energy.cost_of(
                driver.cpu_seconds + workers.cpu_seconds, driver.joules + workers.joules
            ),
            statistics={
                **result.statistics,
                "driver_cpu_seconds": round(driver.cpu_seconds, 4),
                "worker_cpu_seconds": round(workers.cpu_seconds, 4),
                "worker_tasks": tally.tasks,
            },
        )
        self.cache.put(key, result)
        return result

    def _search(
        self,
        profile: HardwareProfile,
        options: SpecializeOptions,
        on_event: Callable[[Event], None],
        should_stop: Callable[[], bool],
        tally: TaskTally,
    ) -> Specialization:
        started = time.perf_counter()
        budget = Budget.of(profile.constraints, self.space)

        def report(progress: Progress) -> None:
            on_event(
                Event(
                    "search",
                    progress.generation,
                    progress.generations,
                    progress.evaluated,
                    progress.best,
                )
            )

        evolved = self.workers.evolve(
            profile, options.evolution(), budget, report, should_stop, tally
        )
        outcome = evolved.outcome

        on_event(Event("rerank", best=outcome.best, evaluated=outcome.statistics.evaluated))
        rerank_started = time.perf_counter()
        result = self.workers.rerank(outcome.ranked, options.seed, should_stop, tally=tally)
        reranked = tuple(
            Reranked(c, top1) for c, top1 in zip(outcome.ranked, result.measured_top1, strict=True)
        )
        chosen = reranked[result.best]
        rerank_seconds = time.perf_counter() - rerank_started

        on_event(Event("export", best=chosen.candidate, evaluated=outcome.statistics.evaluated))
        export_started = time.perf_counter()
        exported = result.exported  # made beside re-ranking (`SearchWorkers.rerank`)
        latency_ms = None
        if options.measure_latency:
            resolution = chosen.candidate.arch.resolution
            latency_ms = self.workers.time_model(
                exported.onnx_bytes,
                (1, self.in_channels, resolution, resolution),
                profile.threads,
                profile.runtime.graph_optimization,
                should_stop,
                tally=tally,
            )
        export_seconds = time.perf_counter() - export_started
        return Specialization(
            profile_name=profile.name,
            supernet_version=self.supernet_version,
            arch=chosen.candidate.arch,
            predicted=chosen.candidate,
            latency_source=evolved.latency_source,
            measured_top1=chosen.measured_top1,
            measured_latency_ms=latency_ms,
            onnx_bytes=exported.onnx_bytes,
            sha256=exported.sha256,
            max_abs_diff=exported.max_abs_diff,
            front=outcome.front,
            reranked=reranked,
            statistics={
                **outcome.statistics.to_dict(),
                "rerank_seconds": round(rerank_seconds, 4),
                "export_seconds": round(export_seconds, 4),
                "total_seconds": round(time.perf_counter() - started, 4),
                "workers": self.workers.slots,
            },
        )
