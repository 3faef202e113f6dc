"""Scored candidates and the budget they must fit: what every search strategy shares.

A strategy never computes figures itself: it hands batches of archs to a `Scorer` (the
predictors in-process, or Ray workers) and reads `Candidate` values back, so the same
evolution runs on a laptop and on a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.profile import Constraints
from ofa_fleet.predictors.subnet_predictor import Predictions

Scorer = Callable[[Sequence[ArchConfig]], Predictions]
"""Predicted figures, top-1 included, for a batch of archs."""


@dataclass(frozen=True)
class Candidate:
    """One scored subnet."""

    arch: ArchConfig
    top1: float
    latency_ms: float
    model_bytes: int
    peak_memory_bytes: int
    macs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": str(self.arch),
            "top1": round(self.top1, 5),
            "latency_ms": round(self.latency_ms, 4),
            "model_bytes": self.model_bytes,
            "peak_memory_bytes": self.peak_memory_bytes,
            "macs": self.macs,
        }


def rerank_order(measured_top1: float, predicted_latency_ms: float) -> tuple[float, float]:
    """How re-ranked candidates compare: the highest measured top-1, ties to the faster.
    One home, since each re-rank task picks its own best with it and the search the best
    of those."""
    return (measured_top1, -predicted_latency_ms)


def candidates(predictions: Predictions) -> list[Candidate]:
    if predictions.top1 is None:
        raise InvalidArgumentError("search needs top-1 predictions: give an accuracy predictor")
    return [
        Candidate(
            arch=arch,
            top1=float(predictions.top1[i]),
            latency_ms=float(predictions.latency_ms[i]),
            model_bytes=int(predictions.model_bytes[i]),
            peak_memory_bytes=int(predictions.peak_memory_bytes[i]),
            macs=int(predictions.macs[i]),
        )
        for i, arch in enumerate(predictions.archs)
    ]


@dataclass(frozen=True)
class Budget:
    """What a subnet must meet: a profile's constraints, resolved against a space."""

    latency_ms: float
    max_model_bytes: int
    max_peak_memory_bytes: int
    resolutions: tuple[int, ...]
    min_top1: float | None = None

    @classmethod
    def of(cls, constraints: Constraints, space: SearchSpace) -> Budget:
        """Fails when the profile fixes a resolution the space does not offer."""
        resolutions = space.resolutions
        if constraints.resolution is not None:
            if constraints.resolution not in space.resolutions:
                raise InvalidArgumentError(
                    f"constraints.resolution {constraints.resolution} is not in the search "
                    f"space; it offers {list(space.resolutions)}"
                )
            resolutions = (constraints.resolution,)
        return cls(
            latency_ms=constraints.latency_budget_ms,
            max_model_bytes=constraints.max_model_bytes,
            max_peak_memory_bytes=constraints.max_peak_memory_bytes,
            resolutions=resolutions,
            min_top1=constraints.min_top1,
        )

    def fits_resources(self, candidate: Candidate) -> bool:
        """Size and memory: limits no amount of waiting changes."""
        return (
            candidate.model_bytes <= self.max_model_bytes
            and candidate.peak_memory_bytes <= self.max_peak_memory_bytes
            and candidate.arch.resolution in self.resolutions
        )

    def admits(self, candidate: Candidate) -> bool:
        return candidate.latency_ms <= self.latency_ms and self.fits_resources(candidate)


def pareto_front(scored: Sequence[Candidate]) -> list[Candidate]:
    """Candidates no other beats on both latency (lower) and top-1 (higher), by latency.

    Among equal latencies the more accurate wins; a point must be strictly more accurate
    than every faster point to stay on the front.
    """
    order = sorted(scored, key=lambda c: (c.latency_ms, -c.top1, str(c.arch)))
    front: list[Candidate] = []
    best = -np.inf
    for candidate in order:
        if candidate.top1 > best:
            front.append(candidate)
            best = candidate.top1
    return front
