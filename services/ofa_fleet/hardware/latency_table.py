"""`LatencyTable`: per-layer latencies a device measured on itself (OFA's lookup table).

A subnet's latency is read off the table as the sum of its layers, minus what timing
each layer alone adds at every internal boundary (the runtime's per-call cost and the
layout conversions onnxruntime inserts at a model's edges, which a whole model pays only
once), then scaled by a correction fitted to whole subnets timed in the same profiling
run. The table records what it was measured for, so it is never applied to another
search space, input or thread count.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ofa_fleet.core.layers import Layer
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.inference.graph_optimization import (
    DEFAULT_GRAPH_OPTIMIZATION,
    check_graph_optimization,
)

FORMAT = "ofa-fleet.latency-table/1"
MAX_DEVICES = 1_000_000_000
FINGERPRINT = re.compile(r"[0-9a-f]{1,64}")


class MeasuredSetting(NamedTuple):
    """What a table was measured for, and how: tables of one setting merge, and a table
    serves only a network and runtime of its own setting."""

    space_fingerprint: str
    in_channels: int
    num_classes: int
    threads: int
    execution_provider: str
    graph_optimization: str


def boundary_key(channels: int, size: int) -> str:
    return f"c{channels}-h{size}"


@dataclass(frozen=True)
class LatencyTable:
    """Measured per-layer latencies (ms, batch 1) and their whole-model correction.

    Attributes:
        space_fingerprint / in_channels / num_classes: what the layers belong to.
        threads / execution_provider / graph_optimization / onnxruntime_version / machine:
            how and where (a table from before levels were recorded was measured at
            onnxruntime's default, "all").
        layers: ms per `Layer.key`.
        boundaries: ms that timing two layers apart adds over timing them together, per
            tensor shape between them (`boundary_key`).
        scale / offset_ms: whole-model correction, ``scale * table_sum + offset_ms``.
        samples: whole subnets timed while profiling, ``{"arch", "measured_ms"}``.
        created: ISO timestamp.
        devices: how many devices' tables the entries are medians of (`latency_merge`).
    """

    space_fingerprint: str
    in_channels: int
    num_classes: int
    threads: int
    execution_provider: str
    onnxruntime_version: str
    machine: str
    layers: dict[str, float]
    boundaries: dict[str, float] = field(default_factory=dict)
    scale: float = 1.0
    offset_ms: float = 0.0
    samples: tuple[dict[str, Any], ...] = ()
    created: str = ""
    devices: int = 1
    graph_optimization: str = DEFAULT_GRAPH_OPTIMIZATION

    def __post_init__(self) -> None:
        check_graph_optimization(self.graph_optimization, "latency table graph_optimization")
        if not isinstance(self.space_fingerprint, str) or not FINGERPRINT.fullmatch(
            self.space_fingerprint
        ):
            raise InvalidArgumentError(
                f"latency table space_fingerprint must be 1-64 hex digits (a search space's "
                f"fingerprint): {str(self.space_fingerprint)[:80]!r}"
            )
        if not self.layers:
            raise InvalidArgumentError("latency table has no layers")
        for key, value in {**self.layers, **self.boundaries}.items():
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InvalidArgumentError(f"latency table entry {key!r} is not a latency: {value}")
        if self.threads <= 0:
            raise InvalidArgumentError(f"latency table threads must be positive: {self.threads}")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise InvalidArgumentError(f"latency table scale must be positive: {self.scale}")
        if not isinstance(self.offset_ms, int | float) or not math.isfinite(self.offset_ms):
            raise InvalidArgumentError(f"latency table offset_ms is not finite: {self.offset_ms}")
        if not isinstance(self.devices, int) or not 1 <= self.devices <= MAX_DEVICES:
            raise InvalidArgumentError(
                f"latency table devices must be 1 to {MAX_DEVICES:,}: {self.devices}"
            )

    @property
    def setting(self) -> MeasuredSetting:
        return MeasuredSetting(
            self.space_fingerprint,
            self.in_channels,
            self.num_classes,
            self.threads,
            self.execution_provider,
            self.graph_optimization,
        )

    def check_compatible(self, space: SearchSpace, in_channels: int, num_classes: int) -> None:
        """Refuse a table measured for another space or network shape."""
        if self.space_fingerprint != space.fingerprint:
            raise InvalidArgumentError(
                f"latency table was measured for search space {self.space_fingerprint}, "
                f"not this supernet's space {space.fingerprint}; run profile-device with "
                "this checkpoint"
            )
        if (self.in_channels, self.num_classes) != (in_channels, num_classes):
            raise InvalidArgumentError(
                f"latency table is for {self.in_channels}-channel input and "
                f"{self.num_classes} classes, this supernet has {in_channels} and {num_classes}"
            )

    def table_sum_ms(self, layers: list[Layer]) -> float:
        """Sum of the layers' entries minus the boundary costs between them."""
        try:
            total = sum(self.layers[layer.key] for layer in layers)
        except KeyError as exc:
            raise InvalidArgumentError(f"latency table has no entry for layer {exc}") from exc
        for layer in layers[:-1]:
            total -= self.boundaries.get(boundary_key(layer.out_channels, layer.out_size), 0.0)
        return total

    def predict_ms(self, layers: list[Layer]) -> float:
        return max(0.0, self.scale * self.table_sum_ms(layers) + self.offset_ms)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "space_fingerprint": self.space_fingerprint,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "threads": self.threads,
            "execution_provider": self.execution_provider,
            "graph_optimization": self.graph_optimization,
            "onnxruntime_version": self.onnxruntime_version,
            "machine": self.machine,
            "created": self.created,
            "scale": self.scale,
            "offset_ms": self.offset_ms,
            "layers": dict(sorted(self.layers.items())),
            "boundaries": dict(sorted(self.boundaries.items())),
            "samples": list(self.samples),
        }
        if self.devices != 1:  # a merged table (`latency_merge`)
            data["devices"] = self.devices
        return data

    @classmethod
    def from_dict(cls, data: Any) -> LatencyTable:
        if not isinstance(data, dict):
            raise InvalidArgumentError("latency table must be a mapping")
        if data.get("format") != FORMAT:
            raise InvalidArgumentError(
                f"latency table format is {data.get('format')!r}, expected {FORMAT!r}"
            )
        values = {k: v for k, v in data.items() if k != "format"}
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise InvalidArgumentError(f"latency table has unknown fields {unknown}")
        values["samples"] = tuple(values.get("samples", ()))
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidArgumentError(f"latency table is incomplete: {exc}") from exc
