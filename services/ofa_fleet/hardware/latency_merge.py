"""One latency table for a kind of device, from the tables several of its devices measured.

Devices of one kind differ a little (silicon, temperature, what else runs), and one of
them may have measured while busy. The merged table takes, entry by entry, the median
over the devices, after dropping whole devices that were out of line: each device's
typical ratio to the entries' medians is compared with the others' (median absolute
deviation on a log scale), and a device more than `OUTLIER_MADS` deviations and more than
`OUTLIER_FLOOR` away from the rest is left out. A busy device is slow everywhere, so
judging a device as a whole catches it where a per-entry test would not. Below
`MIN_FOR_OUTLIERS` devices there is no majority to judge by and none is dropped.

The whole-model correction (`scale`, `offset_ms`) is each device's own fit to its own
table; the merged table takes the median of each, which goes with the median entries.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.latency_table import LatencyTable

MIN_FOR_OUTLIERS = 3
OUTLIER_MADS = 3.0
OUTLIER_FLOOR = math.log(1.25)  # within 25% of the others a device is never an outlier
MAX_MERGED_SAMPLES = 32


@dataclass(frozen=True)
class MergedTable:
    table: LatencyTable
    devices: int  # tables the medians were taken over
    dropped: int  # tables left out as outliers


def merge_tables(tables: Sequence[LatencyTable]) -> MergedTable:
    """The median table of ``tables``, all measured for one space and runtime setting."""
    if not tables:
        raise InvalidArgumentError("no latency tables to merge")
    first = tables[0]
    for other in tables[1:]:
        if other.setting != first.setting:
            raise InvalidArgumentError(
                f"latency tables for {first.setting} and {other.setting} cannot be merged"
            )
    kept = _without_outliers(tables)
    layers = _medians([t.layers for t in kept])
    boundaries = _medians([t.boundaries for t in kept])
    samples = [s for t in kept for s in t.samples][:MAX_MERGED_SAMPLES]
    machines = sorted({t.machine for t in kept})
    table = LatencyTable(
        space_fingerprint=first.space_fingerprint,
        in_channels=first.in_channels,
        num_classes=first.num_classes,
        threads=first.threads,
        execution_provider=first.execution_provider,
        graph_optimization=first.graph_optimization,
        onnxruntime_version=statistics.mode(t.onnxruntime_version for t in kept),
        machine=machines[0] if len(machines) == 1 else f"{len(kept)} devices",
        layers=layers,
        boundaries=boundaries,
        scale=statistics.median(t.scale for t in kept),
        offset_ms=statistics.median(t.offset_ms for t in kept),
        samples=tuple(samples),
        created=max(t.created for t in kept),  # the same tables merge to the same table
        devices=sum(t.devices for t in kept),
    )
    return MergedTable(table, len(kept), len(tables) - len(kept))


def _medians(entries: Sequence[dict[str, float]]) -> dict[str, float]:
    keys = sorted({key for entry in entries for key in entry})
    return {key: statistics.median(entry[key] for entry in entries if key in entry) for key in keys}


def _without_outliers(tables: Sequence[LatencyTable]) -> list[LatencyTable]:
    if len(tables) < MIN_FOR_OUTLIERS:
        return list(tables)
    medians = _medians([t.layers for t in tables])
    levels = [_log_level(t, medians) for t in tables]
    centre = statistics.median(levels)
    spread = statistics.median(abs(level - centre) for level in levels)
    limit = max(OUTLIER_FLOOR, OUTLIER_MADS * spread)
    return [t for t, level in zip(tables, levels, strict=True) if abs(level - centre) <= limit]


def _log_level(table: LatencyTable, medians: dict[str, float]) -> float:
    """The device's typical log ratio to the entries' medians (0 for a typical device)."""
    ratios = [
        math.log(value / medians[key])
        for key, value in table.layers.items()
        if value > 0 and medians.get(key, 0) > 0
    ]
    return statistics.median(ratios) if ratios else 0.0
