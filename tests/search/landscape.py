"""A search landscape whose answer is known, for testing search strategies.

Latency, size and memory come from the real predictors (analytic latency for a Cortex-A72
profile); top-1 is a fixed, smooth function of MACs, so "better" is unambiguous: within a
budget, more MACs is more accurate. Strategies are judged against that, and against
each other at equal budgets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.space import cpu_space
from ofa_fleet.hardware.profile import Constraints, CpuSpec, HardwareProfile
from ofa_fleet.predictors.subnet_predictor import Predictions, SubnetPredictor

SPACE = cpu_space()
PROFILE = HardwareProfile(
    "landscape", CpuSpec("aarch64", 4, 1.5), 2**30, 2**30, Constraints(5.0, 2**24, 2**22)
)
MACS_SCALE = 3e6


class Landscape:
    """A scorer (see `search.candidates.Scorer`) that also counts what it was asked."""

    def __init__(self) -> None:
        self.predictor = SubnetPredictor(SPACE, 3, 10, PROFILE)
        self.calls = 0
        self.scored = 0

    def __call__(self, archs: Sequence[ArchConfig]) -> Predictions:
        self.calls += 1
        self.scored += len(archs)
        predictions = self.predictor.predict(archs)
        top1 = 1.0 - 0.5 * np.exp(-predictions.macs / MACS_SCALE)
        return dataclasses.replace(predictions, top1=top1)

    def figures(self, arch: ArchConfig) -> Predictions:
        return self([arch])
