"""Which devices measure their own latency table, and for what (GetLatencyMeasurement).

A profile with ``measure_on_devices`` gets its latency table from its devices: each one
asked measures the layers of the space search serves now and sends its table to the
registry, which keeps the median. Devices are asked until the profile's table for this
space and runtime setting is the median of `DEVICES_WANTED` of them: enough that one
device measuring while busy is outvoted, few enough that a large fleet does not spend
its CPU on the same table (a device that has sent its table for a space does not measure
it again; it remembers).
"""

from __future__ import annotations

import json

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.latency_table import LatencyTable, MeasuredSetting
from ofa_fleet.inference.graph_optimization import graph_optimization_from_proto
from ofa_fleet.v1 import common_pb2, delivery_pb2, registry_pb2, search_pb2

DEVICES_WANTED = 5


def measurement_for(
    profile: registry_pb2.Profile, supernet: search_pb2.GetSupernetResponse
) -> delivery_pb2.LatencyMeasurement | None:
    """What the profile's devices should measure now, or None."""
    spec = profile.spec
    if not spec.measure_on_devices or not supernet.space_json:
        return None
    wanted = delivery_pb2.LatencyMeasurement(
        profile_name=spec.name,
        space_json=supernet.space_json,
        space_fingerprint=supernet.space_fingerprint,
        in_channels=supernet.in_channels,
        num_classes=supernet.num_classes,
        threads=spec.runtime.threads or 1,
        execution_provider=spec.runtime.execution_provider or "CPUExecutionProvider",
        graph_optimization=spec.runtime.graph_optimization or common_pb2.GRAPH_OPTIMIZATION_ALL,
    )
    table = _table(spec.latency_table_json)
    if table is None or table.devices < DEVICES_WANTED:
        return wanted
    asked = MeasuredSetting(
        wanted.space_fingerprint,
        wanted.in_channels,
        wanted.num_classes,
        wanted.threads,
        wanted.execution_provider,
        graph_optimization_from_proto(wanted.graph_optimization, "graph_optimization"),
    )
    return None if table.setting == asked else wanted


def _table(text: str) -> LatencyTable | None:
    if not text:
        return None
    try:
        return LatencyTable.from_dict(json.loads(text))
    except (InvalidArgumentError, ValueError):  # the registry validated it; be safe anyway
        return None
