"""A profile's model that its devices measure over the latency budget gets specialized
again, once, with what they measured.

Search predicts latency and the profile's `latency_reports` calibrate that prediction
(`predictors.latency`). When the devices running a profile's current model report a
median latency over the budget (over at least `min_reports` reports, so one slow device
cannot decide), the model's arch and that median become a latency report the reconciler
passes to search with every later specialization of the profile, and the reconciler is
asked for a new model ("over-budget"). Bounded: the ledger remembers the model it asked
for, so the same model never triggers twice, even if search returns it again.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ofa_fleet.delivery.rollout import DeviceReport
from ofa_fleet.delivery.store.model_store import ModelRecord
from ofa_fleet.delivery.store.specializations import Specializations

DEFAULT_MIN_REPORTS = 3


@dataclass(frozen=True)
class OverBudgetVerdict:
    sha256: str
    arch: str
    median_ms: float
    reports: int


def judge(
    current: ModelRecord, budget_ms: float, devices: Sequence[DeviceReport], min_reports: int
) -> OverBudgetVerdict | None:
    """A verdict when the current model's measured median is over ``budget_ms``."""
    measured = [
        d.latency_ms
        for d in devices
        if d.reported and d.sha256 == current.sha256 and d.latency_ms > 0
    ]
    if len(measured) < max(1, min_reports):
        return None
    median = statistics.median(measured)
    if median <= budget_ms:
        return None
    return OverBudgetVerdict(current.sha256, current.manifest.arch, median, len(measured))


class OverBudget:
    def __init__(
        self,
        ledger: Specializations,
        wake: Callable[[str, str], None],
        min_reports: int = DEFAULT_MIN_REPORTS,
    ) -> None:
        self.ledger = ledger
        self.wake = wake
        self.min_reports = min_reports

    async def check(
        self,
        profile_name: str,
        current: ModelRecord,
        budget_ms: float,
        devices: Sequence[DeviceReport],
    ) -> OverBudgetVerdict | None:
        """The verdict that asked for a new model now; None when none was asked."""
        verdict = judge(current, budget_ms, devices, self.min_reports)
        if verdict is None:
            return None
        first = await asyncio.to_thread(
            self.ledger.record_over_budget,
            profile_name,
            verdict.sha256,
            verdict.arch,
            verdict.median_ms,
            verdict.reports,
        )
        if not first:
            return None
        self.wake(profile_name, "over-budget")
        return verdict
