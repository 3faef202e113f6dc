"""Everything search asks about a candidate, for a whole batch at once.

Latency on the profile (`latency`), top-1 (`accuracy`, when a predictor is given), model
file bytes and peak activation memory (`memory`) and MACs, all from one
`LayerIndex.matrix` per batch: the batch costs a few array operations and one MLP pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.layers import FLOAT_BYTES
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.predictors.accuracy import AccuracyPredictor
from ofa_fleet.predictors.latency import LatencyPredictor
from ofa_fleet.predictors.layer_index import LayerIndex
from ofa_fleet.predictors.memory import ONNX_BYTES_PER_NODE


@dataclass(frozen=True)
class Predictions:
    """Predicted figures for a batch of subnets, one array entry per arch."""

    archs: tuple[ArchConfig, ...]
    latency_ms: np.ndarray
    latency_source: str
    top1: np.ndarray | None
    model_bytes: np.ndarray
    peak_memory_bytes: np.ndarray
    macs: np.ndarray

    def record(self, i: int) -> dict[str, Any]:
        """One subnet's figures, in the shape ``ofa-fleet predict --json`` prints."""
        return {
            "arch": str(self.archs[i]),
            "latency_ms": round(float(self.latency_ms[i]), 4),
            "latency_source": self.latency_source,
            "top1": None if self.top1 is None else round(float(self.top1[i]), 4),
            "model_bytes": int(self.model_bytes[i]),
            "peak_memory_bytes": int(self.peak_memory_bytes[i]),
            "macs": int(self.macs[i]),
        }


class SubnetPredictor:
    """Predicts latency, accuracy, size and memory of subnets for one profile."""

    def __init__(
        self,
        space: SearchSpace,
        in_channels: int,
        num_classes: int,
        profile: HardwareProfile,
        accuracy: AccuracyPredictor | None = None,
        supernet_version: str | None = None,
    ) -> None:
        if accuracy is not None and supernet_version is not None:
            accuracy.check_compatible(space, supernet_version)
        self.index = LayerIndex(space, in_channels, num_classes)
        self.latency = LatencyPredictor(self.index, profile)
        self.accuracy = accuracy
        self._bytes = self.index.figure(
            lambda layer: (
                layer.figures.weights * FLOAT_BYTES + layer.figures.nodes * ONNX_BYTES_PER_NODE
            )
        )
        self._peak = self.index.figure(lambda layer: layer.figures.peak_bytes)
        self._macs = self.index.figure(lambda layer: layer.figures.macs)

    def predict(self, archs: Sequence[ArchConfig]) -> Predictions:
        matrix, encodings = self.index.matrix_and_encodings(archs, self.accuracy is not None)
        top1 = None if self.accuracy is None else self.accuracy.predict_encoded(encodings)
        return Predictions(
            archs=tuple(archs),
            latency_ms=self.latency.predict(matrix),
            latency_source=self.latency.source,
            top1=top1,
            model_bytes=self._bytes[matrix].sum(axis=1).astype(np.int64),
            peak_memory_bytes=self._peak[matrix].max(axis=1).astype(np.int64),
            macs=self._macs[matrix].sum(axis=1).astype(np.int64),
        )
