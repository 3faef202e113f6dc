"""Constraint-aware evolutionary search: OFA's EvolutionFinder, batched and bounded.

The algorithm is OFA's: a population of feasible subnets; each generation keeps the most
accurate quarter as parents and fills the rest with mutants and crossovers that fit the
budget. Three things differ, each for a reason:

- Children are proposed and scored in *batches* (one `Scorer` call per round), never one
  at a time, so scoring can be vectorised in-process or spread over Ray workers.
- Every loop is bounded. OFA's finder redraws a child until it fits, forever when nothing
  fits; here the smallest subnets are scored first, and when even they do not fit the
  search ends at once with the space's reach. Tight budgets are filled from mutants of
  the feasible subnets found so far, and a generation that finds too few children
  proceeds with what it has.
- The search stops early once the best predicted top-1 has not improved for ``patience``
  generations, and every scored arch is remembered, so duplicates cost nothing.

No Ray and no threads in here: the module is pure and, for a seed, reproducible.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Generator, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import CancelledError, InfeasibleProfileError, InvalidArgumentError
from ofa_fleet.search.candidates import Budget, Candidate, Scorer, candidates, pareto_front
from ofa_fleet.search.genome import Genome, GenomeOperators


@dataclass(frozen=True)
class EvolutionSettings:
    """OFA's defaults, except for the bounded generation count and early stopping."""

    population: int = 100
    generations: int = 100
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    mutate_prob: float = 0.1
    resolution_mutate_prob: float = 0.5
    patience: int = 15
    seed: int = 0
    top_k: int = 4
    fill_rounds: int = 4

    def __post_init__(self) -> None:
        if self.population < 4:
            raise InvalidArgumentError(f"population must be at least 4, got {self.population}")
        if self.generations < 1:
            raise InvalidArgumentError(f"generations must be positive, got {self.generations}")
        if not 0.0 < self.parent_ratio < 1.0 or not 0.0 <= self.mutation_ratio <= 1.0:
            raise InvalidArgumentError("parent_ratio must be in (0, 1), mutation_ratio in [0, 1]")
        if not 0.0 < self.mutate_prob <= 1.0 or not 0.0 <= self.resolution_mutate_prob <= 1.0:
            raise InvalidArgumentError("mutation probabilities must be within 0..1")
        if self.patience < 1 or self.top_k < 1 or self.fill_rounds < 1:
            raise InvalidArgumentError("patience, top_k and fill_rounds must be positive")


@dataclass(frozen=True)
class Progress:
    """Reported after the population is seeded (generation 0) and after every generation."""

    generation: int
    generations: int
    best: Candidate
    evaluated: int


@dataclass(frozen=True)
class SearchStatistics:
    generations: int
    evaluated: int
    feasible: int
    seconds: float
    stop_reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "generations": self.generations,
            "candidates_evaluated": self.evaluated,
            "feasible_candidates": self.feasible,
            "search_seconds": round(self.seconds, 4),
            "stop_reason": self.stop_reason,
        }


@dataclass(frozen=True)
class SearchOutcome:
    """The best subnet, the runners-up to re-rank, and the accuracy-latency front.

    Attributes:
        best: the feasible candidate with the highest predicted top-1.
        ranked: the ``top_k`` best feasible candidates, best first (``best`` included).
        front: Pareto front over every scored candidate that fits the size and memory
            limits, within the latency budget or not, so it shows what more budget buys.
    """

    best: Candidate
    ranked: tuple[Candidate, ...]
    front: tuple[Candidate, ...]
    statistics: SearchStatistics


@dataclass
class _Memory:
    """Every arch scored so far, by its genes (`Genome.active`)."""

    space: SearchSpace
    score: Scorer
    budget: Budget
    seen: dict[Hashable, Candidate] = field(default_factory=dict)

    def evaluate(self, genomes: Sequence[Genome]) -> list[Candidate]:
        """Candidates for ``genomes`` in order; only archs never seen are built and
        reach the scorer."""
        keys = [genome.active for genome in genomes]
        fresh: dict[Hashable, Genome] = {}
        for key, genome in zip(keys, genomes, strict=True):
            if key not in self.seen:
                fresh.setdefault(key, genome)
        if fresh:
            scored = candidates(self.score([genome.arch(self.space) for genome in fresh.values()]))
            self.seen.update(zip(fresh, scored, strict=True))
        return [self.seen[key] for key in keys]

    def feasible(self) -> list[Candidate]:
        return [c for c in self.seen.values() if self.budget.admits(c)]


class EvolutionSearch:
    """One search for one budget. `run` may be called once.

    Args:
        space: the search space.
        score: figures for a batch of archs (see `Scorer`).
        budget: what the result must meet.
        settings: population, generations and the rest.
        progress: called with a `Progress` after seeding and after each generation.
        should_stop: polled between scoring rounds; when true the search raises
            `CancelledError` (the caller left or its deadline passed).
    """

    def __init__(
        self,
        space: SearchSpace,
        score: Scorer,
        budget: Budget,
        settings: EvolutionSettings | None = None,
        progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings or EvolutionSettings()
        self.budget = budget
        self.operators = GenomeOperators(
            space,
            budget.resolutions,
            self.settings.mutate_prob,
            self.settings.resolution_mutate_prob,
        )
        self.memory = _Memory(space, score, budget)
        self.rng = random.Random(self.settings.seed)
        self.progress = progress or (lambda _: None)
        self.should_stop = should_stop or (lambda: False)

    def run(self) -> SearchOutcome:
        steps = self.steps()
        while True:
            try:
                self.progress(next(steps))
            except StopIteration as end:
                return end.value

    def steps(self) -> Generator[Progress, None, SearchOutcome]:
        """The search as a generator: a `Progress` after seeding and after each
        generation, the outcome as its return value. A Ray task streams these back
        (`search.worker.evolve`), so the whole evolution can run beside its scorer."""
        started = time.perf_counter()
        settings = self.settings
        population = self._seed()
        best = max(population, key=_rank)[1]
        yield Progress(0, settings.generations, best, len(self.memory.seen))
        parents_size = max(1, round(settings.parent_ratio * settings.population))
        mutants = round(settings.mutation_ratio * settings.population)
        stale, generation, stop_reason = 0, 0, "generations"
        for generation in range(1, settings.generations + 1):
            parents = sorted(population, key=_rank, reverse=True)[:parents_size]
            population = parents + self._children(parents, mutants, settings.population - mutants)
            leader = max(population, key=_rank)[1]
            if leader.top1 > best.top1 + 1e-9:
                best, stale = leader, 0
            else:
                stale += 1
            yield Progress(generation, settings.generations, best, len(self.memory.seen))
            if stale >= settings.patience:
                stop_reason = "converged"
                break
        return self._outcome(generation, stop_reason, time.perf_counter() - started)

    # ------------------------------------------------------------------ seeding

    def _seed(self) -> list[tuple[Genome, Candidate]]:
        """A population of feasible subnets, or `InfeasibleProfileError` with the reach."""
        smallest = self.operators.smallest()
        pool = [
            (g, c)
            for g, c in zip(smallest, self.memory.evaluate(smallest), strict=True)
            if self.budget.admits(c)
        ]
        if not pool:
            raise self._infeasible()
        wanted = self.settings.population
        for _ in range(self.settings.fill_rounds):
            self._check_stop()
            drawn = [self.operators.sample(self.rng) for _ in range(2 * wanted)]
            pool += self._admitted(drawn, pool, wanted - len(pool))
            if len(pool) >= wanted:
                break
        # A tight budget: few random subnets fit, so grow the rest from the ones that do.
        for _ in range(4 * self.settings.fill_rounds):
            if len(pool) >= wanted:
                break
            self._check_stop()
            mutated = [
                self.operators.mutate(self.rng.choice(pool)[0], self.rng, prob=0.3)
                for _ in range(2 * (wanted - len(pool)))
            ]
            pool += self._admitted(mutated, pool, wanted - len(pool))
        return pool

    def _admitted(
        self, genomes: list[Genome], known: list[tuple[Genome, Candidate]], limit: int
    ) -> list[tuple[Genome, Candidate]]:
        """Up to ``limit`` of ``genomes`` that fit the budget and are not in ``known``."""
        taken = {str(c.arch) for _, c in known}
        admitted: list[tuple[Genome, Candidate]] = []
        for genome, candidate in zip(genomes, self.memory.evaluate(genomes), strict=True):
            key = str(candidate.arch)
            if len(admitted) < limit and key not in taken and self.budget.admits(candidate):
                taken.add(key)
                admitted.append((genome, candidate))
        return admitted

    def _infeasible(self) -> InfeasibleProfileError:
        seen = list(self.memory.seen.values())
        fastest = min(seen, key=lambda c: c.latency_ms)
        smallest = min(c.model_bytes for c in seen)
        leanest = min(c.peak_memory_bytes for c in seen)
        b = self.budget
        misses = []
        if fastest.latency_ms > b.latency_ms:
            misses.append(
                f"latency: the fastest subnet needs {fastest.latency_ms:.3f} ms, "
                f"the budget is {b.latency_ms:g} ms"
            )
        if smallest > b.max_model_bytes:
            misses.append(
                f"model size: the smallest subnet is {smallest} bytes, the limit "
                f"{b.max_model_bytes} bytes"
            )
        if leanest > b.max_peak_memory_bytes:
            misses.append(
                f"peak memory: the leanest subnet needs {leanest} bytes, the limit "
                f"{b.max_peak_memory_bytes} bytes"
            )
        if not misses:  # each limit is reachable, but not all by one subnet
            misses.append(
                f"no single subnet meets all limits at once (fastest {fastest.latency_ms:.3f} "
                f"ms, smallest {smallest} bytes, leanest {leanest} bytes)"
            )
        return InfeasibleProfileError(
            f"no subnet of the search space fits this profile at resolution(s) "
            f"{list(b.resolutions)}: " + "; ".join(misses)
        )

    # --------------------------------------------------------------- generations

    def _children(
        self, parents: list[tuple[Genome, Candidate]], mutants: int, crosses: int
    ) -> list[tuple[Genome, Candidate]]:
        """Feasible, distinct mutants and crossovers of ``parents``, in bounded rounds."""
        children: list[tuple[Genome, Candidate]] = []
        known = list(parents)
        want_mut, want_cross = mutants, crosses
        for _ in range(self.settings.fill_rounds):
            if want_mut <= 0 and want_cross <= 0:
                break
            self._check_stop()
            # Propose more than needed: on a tight budget many proposals do not fit.
            extra = 1.5
            mut = [
                self.operators.mutate(self.rng.choice(parents)[0], self.rng)
                for _ in range(math.ceil(max(want_mut, 0) * extra))
            ]
            cross = [
                self.operators.crossover(
                    self.rng.choice(parents)[0], self.rng.choice(parents)[0], self.rng
                )
                for _ in range(math.ceil(max(want_cross, 0) * extra))
            ]
            # Scored together: one round trip to the scorer per round, not one per kind
            # of child (each is a fan-out to the Ray workers and back).
            self.memory.evaluate(mut + cross)
            got_mut = self._admitted(mut, known, want_mut) if want_mut > 0 else []
            known += got_mut
            got_cross = self._admitted(cross, known, want_cross) if want_cross > 0 else []
            known += got_cross
            children += got_mut + got_cross
            want_mut -= len(got_mut)
            want_cross -= len(got_cross)
        return children

    def _check_stop(self) -> None:
        if self.should_stop():
            raise CancelledError("search cancelled: the caller left or its deadline passed")

    def _outcome(self, generations: int, stop_reason: str, seconds: float) -> SearchOutcome:
        feasible = self.memory.feasible()
        # Any feasible arch scored, admitted to the population or not, may be the best; the
        # leader is among them, so the first ranked is at least as good. Taken always, ties
        # (equal top-1 and latency) go by the arch string, so `ranked` starts with `best`.
        ranked = sorted(feasible, key=lambda c: (-c.top1, c.latency_ms, str(c.arch)))
        best = ranked[0]
        min_top1 = self.budget.min_top1
        if min_top1 is not None and best.top1 < min_top1:
            raise InfeasibleProfileError(
                f"no subnet within the budget reaches min_top1 {min_top1:.4f}: the best "
                f"predicted is {best.top1:.4f} ({best.arch}, {best.latency_ms:.3f} ms); "
                "raise the latency budget or lower min_top1"
            )
        front = pareto_front(
            [c for c in self.memory.seen.values() if self.budget.fits_resources(c)]
        )
        return SearchOutcome(
            best=best,
            ranked=tuple(ranked[: self.settings.top_k]),
            front=tuple(front),
            statistics=SearchStatistics(
                generations=generations,
                evaluated=len(self.memory.seen),
                feasible=len(feasible),
                seconds=seconds,
                stop_reason=stop_reason,
            ),
        )


def _rank(member: tuple[Genome, Candidate]) -> tuple[float, float]:
    """More accurate first; among equals the faster."""
    return (member[1].top1, -member[1].latency_ms)
