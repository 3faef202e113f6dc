"""The latency predictor: the best source a profile offers wins.

1. ``lut``: the profile carries a latency table the device measured (OFA's method), or
   the median of what its devices measured (``measure_on_devices``) for this space;
2. ``analytic``: otherwise, a roofline estimate from the profile's CPU figures;
3. ``calibrated``: either of the two, corrected by whole-model latencies the profile's
   devices reported (`calibration`), once there are any.

Predictions are for the profile's batch size: batch-1 latency times the batch, which a
CPU running one core per model does not beat by much and a budget may rely on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.layers import Layer
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.latency_table import LatencyTable, MeasuredSetting, boundary_key
from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.predictors.analytic import layer_components_ms
from ofa_fleet.predictors.calibration import Calibration, fit_calibration
from ofa_fleet.predictors.layer_index import LayerIndex

SOURCES = ("lut", "analytic", "calibrated")


class LatencyPredictor:
    """Batched latency (ms) of subnets on one hardware profile."""

    def __init__(self, index: LayerIndex, profile: HardwareProfile) -> None:
        self.index = index
        self.profile = profile
        self.table: LatencyTable | None = _usable_table(index, profile)
        if self.table is not None:
            self.table.check_compatible(index.space, index.in_channels, index.num_classes)
            if self.table.threads != profile.threads:
                raise InvalidArgumentError(
                    f"profile {profile.name!r} runs {profile.threads} threads but its latency "
                    f"table was measured with {self.table.threads}"
                )
            table = self.table
            self._components = index.figure(lambda layer: _table_entry(table, layer))[:, None]
        else:
            self._components = index.figure(
                lambda layer: layer_components_ms(layer, profile.cpu, profile.threads)
            )
        self.calibration: Calibration | None = None
        if profile.latency_reports:
            archs = [ArchConfig.parse(r.arch, index.space) for r in profile.latency_reports]
            measured = np.array([r.measured_ms for r in profile.latency_reports])
            rows = self.components(archs)  # reports are at the profile's batch size
            self.calibration = fit_calibration(rows, measured)

    @property
    def source(self) -> str:
        if self.calibration is not None:
            return "calibrated"
        return "lut" if self.table is not None else "analytic"

    def components(self, archs: Sequence[ArchConfig] | np.ndarray) -> np.ndarray:
        """(n, k) base-predictor components at the profile's batch size, in ms."""
        matrix = archs if isinstance(archs, np.ndarray) else self.index.matrix(archs)
        parts = self._components[matrix].sum(axis=1)
        if self.table is not None:
            parts = np.maximum(0.0, self.table.scale * parts + self.table.offset_ms)
        return parts * self.profile.constraints.batch_size

    def predict(self, archs: Sequence[ArchConfig] | np.ndarray) -> np.ndarray:
        """Latency in ms per subnet; ``archs`` may be a `LayerIndex.matrix`."""
        parts = self.components(archs)
        if self.calibration is not None:
            return np.asarray(self.calibration.predict(parts))
        return np.asarray(parts.sum(axis=1))


def _usable_table(index: LayerIndex, profile: HardwareProfile) -> LatencyTable | None:
    """The profile's table, unless its devices measured it for an earlier space, thread
    count, execution provider or graph optimization level: they measure again after their
    next model, and until then the analytic estimate (with their reports) stands in. An
    operator's table that does not fit is an error instead."""
    table = profile.latency_table
    if table is None or not profile.measure_on_devices:
        return table
    wanted = MeasuredSetting(
        index.space.fingerprint,
        index.in_channels,
        index.num_classes,
        profile.threads,
        profile.runtime.execution_provider,
        profile.runtime.graph_optimization,
    )
    return table if table.setting == wanted else None


def _table_entry(table: LatencyTable, layer: Layer) -> float:
    """The layer's table latency, less the boundary after it (every layer but the head
    is followed by one; see `LatencyTable`)."""
    value = table.layers.get(layer.key)
    if value is None:
        raise InvalidArgumentError(f"latency table has no entry for layer {layer.key}")
    if layer.kind != "head":
        value -= table.boundaries.get(boundary_key(layer.out_channels, layer.out_size), 0.0)
    return value
