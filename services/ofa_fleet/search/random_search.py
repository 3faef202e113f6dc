"""Random search: the baseline an evolutionary search has to beat at an equal budget.

Neural architecture search papers often find random sampling hard to beat; reporting it
beside evolution (same scorer, same number of scored candidates) keeps the comparison
honest.
"""

from __future__ import annotations

import random

from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import InfeasibleProfileError, InvalidArgumentError
from ofa_fleet.search.candidates import Budget, Candidate, Scorer, candidates
from ofa_fleet.search.genome import GenomeOperators

BATCH = 1000


def random_search(
    space: SearchSpace, score: Scorer, budget: Budget, evaluations: int, seed: int = 0
) -> Candidate:
    """The most accurate feasible subnet among ``evaluations`` uniform draws."""
    if evaluations < 1:
        raise InvalidArgumentError(f"evaluations must be positive, got {evaluations}")
    operators = GenomeOperators(space, budget.resolutions)
    rng = random.Random(seed)
    best: Candidate | None = None
    left = evaluations
    while left > 0:
        archs = [operators.sample(rng).arch(space) for _ in range(min(BATCH, left))]
        left -= len(archs)
        for candidate in candidates(score(archs)):
            if budget.admits(candidate) and (best is None or candidate.top1 > best.top1):
                best = candidate
    if best is None:
        raise InfeasibleProfileError(
            f"none of {evaluations} random subnets fits the budget "
            f"({budget.latency_ms:g} ms, {budget.max_model_bytes} bytes, "
            f"{budget.max_peak_memory_bytes} bytes peak memory)"
        )
    return best
