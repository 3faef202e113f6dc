"""Calibration: a per-profile correction fitted on what devices report.

A base predictor (the analytic estimate, or a latency table) splits each subnet's
predicted latency into components (for the analytic estimate: dense convolution,
depthwise convolution, memory-bound nodes, dispatch). Reported whole-model latencies
fit one weight per component, so a device whose depthwise convolutions are slower than
its datasheet suggests corrects that part alone.

With few reports the fit is held close to a single common scale (ridge regression
toward the scale that best fits all reports), and the components separate as reports
accumulate: one report already fixes the overall level, a handful the mix. Errors are
relative, since a budget is a ratio to meet. The fitted weights are then raised by the
largest ratio by which they fall short of a report, so a calibrated prediction is what the
profile's devices measured at most, not on average.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ofa_fleet.errors import InvalidArgumentError

# Chosen on 80 subnets measured on the project's 2-core VM (bench/predictor_fidelity.py),
# with 5% noise added to the reports: 0.005 reached 94% within +-10% from 5 reports,
# where 0.05 reached 84% and 0.001 overfitted noisy reports (89%).
RIDGE = 0.005


@dataclass(frozen=True)
class Calibration:
    """Weights per component; ``predict = components @ weights``."""

    weights: tuple[float, ...]
    reports: int

    def predict(self, components: np.ndarray) -> np.ndarray:
        """``components``: (n, k) or (k,) base times in ms -> calibrated ms."""
        return np.asarray(components) @ np.asarray(self.weights)


def fit_calibration(
    components: np.ndarray, measured: np.ndarray, ridge: float = RIDGE
) -> Calibration:
    """Fit weights on (n, k) component rows against n measured latencies (ms)."""
    rows = np.asarray(components, dtype=np.float64)
    targets = np.asarray(measured, dtype=np.float64)
    if rows.ndim != 2 or len(rows) != len(targets) or len(rows) == 0:
        raise InvalidArgumentError("calibration needs one component row per measurement")
    if np.any(targets <= 0) or not np.all(np.isfinite(targets)):
        raise InvalidArgumentError("measured latencies must be positive")
    relative = rows / targets[:, None]  # each row scaled so the target is 1
    totals = relative.sum(axis=1)
    common = float(np.sum(totals) / np.sum(totals**2))  # best single scale, relative error
    design = relative * common  # in units of the common scale: the prior is all ones
    # minimise |design @ u - 1|^2 + ridge * |u - 1|^2 in closed form; weights = common * u
    k = rows.shape[1]
    gram = design.T @ design + ridge * np.eye(k)
    multipliers = np.linalg.solve(gram, design.T @ np.ones(len(targets)) + ridge * np.ones(k))
    multipliers = np.clip(multipliers, 0.05, None)  # a component never costs nothing
    weights = common * multipliers
    # No report under-predicted: the fit is raised by the most it fell short of one. Search
    # holds predictions to a budget every device must meet, and a fit through the middle
    # of the reports picked subnets that half the devices measured over it.
    shortfall = max(1.0, float(np.max(targets / (rows @ weights))))
    return Calibration(weights=tuple(float(w * shortfall) for w in weights), reports=len(targets))
