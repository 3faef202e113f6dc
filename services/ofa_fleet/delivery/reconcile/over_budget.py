"""A profile's model that too many of its devices measure over the latency budget gets
specialized again, once, with what they measured.

A budget is a promise to every device, so a model is judged by its fleet's slow end,
not its middle: it is over budget when more than `OVER_BUDGET_SHARE` of the devices
reporting it (at least `min_reports` of them, so that one report cannot decide) measure
it over the budget. Search predicts latency, and the profile's `latency_reports`
calibrate that prediction (`predictors.latency`); the model's arch and the latency most
of its devices stay within (the 95th percentile of their reports, nearest rank: with
fewer than 20 reports, the slowest) become such a report, which the reconciler passes
to search with every later specialization of the profile, and the reconciler is asked
for a new model ("over-budget"). Search then keeps that percentile, not the median,
within the budget. Bounded: the ledger remembers the model it asked for, so the same
model never triggers twice, even if search returns it again.

Judged by the median instead, a model predicted just under its budget left about half
of its devices over it (measured with `ofa-fleet demo --closed-loop`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ofa_fleet.delivery.rollout import DeviceReport
from ofa_fleet.delivery.store.model_store import ModelRecord
from ofa_fleet.delivery.store.specializations import Specializations

DEFAULT_MIN_REPORTS = 3
# Most of a model's reporting devices that may measure it over budget: 5% (at least 95%
# within), so below 20 reports, none.
OVER_BUDGET_SHARE = 0.05
PERCENTILE = 0.95


@dataclass(frozen=True)
class OverBudgetVerdict:
    sha256: str
    arch: str
    latency_ms: float  # the 95th percentile of the reports (nearest rank)
    reports: int
    over: int  # reports over the budget


def judge(
    current: ModelRecord, budget_ms: float, devices: Sequence[DeviceReport], min_reports: int
) -> OverBudgetVerdict | None:
    """A verdict when more than `OVER_BUDGET_SHARE` of the current model's reports are
    over ``budget_ms``."""
    measured = sorted(
        d.latency_ms
        for d in devices
        if d.reported and d.sha256 == current.sha256 and d.latency_ms > 0
    )
    if len(measured) < max(1, min_reports):
        return None
    over = sum(1 for ms in measured if ms > budget_ms)
    if over <= OVER_BUDGET_SHARE * len(measured):
        return None
    percentile = measured[math.ceil(PERCENTILE * len(measured)) - 1]
    return OverBudgetVerdict(current.sha256, current.manifest.arch, percentile, len(measured), over)


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
            verdict.latency_ms,
            verdict.reports,
        )
        if not first:
            return None
        self.wake(profile_name, "over-budget")
        return verdict
