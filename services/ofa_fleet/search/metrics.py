"""What search reports to Prometheus: work done, work in flight, and where time goes.

Candidates evaluated is the figure that sizes a Ray cluster (it is what the workers
spend their CPU on); the per-stage histogram tells a slow search (a hard profile) from a
slow re-rank (too little data per worker) or a slow export.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ofa_fleet.search.specializer import Specialization

STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
STAGES = {"search": "search_seconds", "rerank": "rerank_seconds", "export": "export_seconds"}


class SearchMetrics:
    def __init__(self, registry: CollectorRegistry, active: Callable[[], int]) -> None:
        self._candidates = Counter(
            "ofa_fleet_search_candidates_evaluated",
            "Subnets scored by the latency and accuracy predictors.",
            registry=registry,
        )
        self._outcomes = Counter(
            "ofa_fleet_search_specializations",
            "Specialize calls by outcome: ok, cached, failed (an error) or cancelled.",
            ["outcome"],
            registry=registry,
        )
        self._seconds = Histogram(
            "ofa_fleet_search_seconds",
            "Seconds per stage of a specialization that ran (cached answers excluded).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        gauge = Gauge(
            "ofa_fleet_search_specializations_active",
            "Specializations running now.",
            registry=registry,
        )
        gauge.set_function(active)

    def finished(self, result: Specialization) -> None:
        if result.from_cache:
            self._outcomes.labels("cached").inc()
            return
        self._outcomes.labels("ok").inc()
        self._candidates.inc(int(result.statistics["candidates_evaluated"]))
        for stage, key in STAGES.items():
            if key in result.statistics:
                self._seconds.labels(stage).observe(float(result.statistics[key]))

    def ended_without_result(self, cancelled: bool) -> None:
        self._outcomes.labels("cancelled" if cancelled else "failed").inc()
