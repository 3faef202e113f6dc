"""What a simulated fleet did: one outcome per device, and the figures a person reads first.

Boot-to-model percentiles are taken over the devices that booted only: a device that
never got a model has no boot-to-model time, and counting its deadline instead would
make the percentile a figure of the deadline chosen, not of the services. Failures are
counted on their own line instead. Percentiles use the nearest-rank method, so every
figure reported is one a device actually took.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class DeviceOutcome:
    """One simulated device's boot.

    `ok`: a model runs on it and was reported. `verified`: after the boot, the installed
    model was checked again on disk (size, sha256, signature by a trusted key) and is the
    one the boot reported. `seconds_to_model` counts from the device's start (after it
    was let in by the concurrency limit) to its model's first good inference.
    """

    index: int
    device_id: str
    ok: bool
    verified: bool
    seconds_to_model: float
    model_sha256: str
    latency_ms: float
    bytes_downloaded: int
    error: str
    enrolled: bool = False  # enrolled in this run (False: an identity from an earlier run)
    latency_table_sent: bool = False  # measured and sent after its boot, its profile asking

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds_to_model"] = round(self.seconds_to_model, 4)
        data["latency_ms"] = round(self.latency_ms, 4)
        return data


@dataclass
class SimulationSummary:
    devices: int
    booted: int
    verified: int
    failed: int
    p50_seconds: float  # boot-to-model over booted devices
    p99_seconds: float
    bytes_downloaded: int
    wall_seconds: float
    outcomes: list[DeviceOutcome]

    @classmethod
    def of(cls, outcomes: list[DeviceOutcome], wall_seconds: float) -> SimulationSummary:
        ordered = sorted(outcomes, key=lambda o: o.index)
        booted = sorted(o.seconds_to_model for o in ordered if o.ok)
        return cls(
            devices=len(ordered),
            booted=len(booted),
            verified=sum(1 for o in ordered if o.verified),
            failed=sum(1 for o in ordered if not o.ok),
            p50_seconds=nearest_rank(booted, 50),
            p99_seconds=nearest_rank(booted, 99),
            bytes_downloaded=sum(o.bytes_downloaded for o in ordered),
            wall_seconds=wall_seconds,
            outcomes=ordered,
        )

    def errors(self) -> dict[str, int]:
        """Each distinct error and how many devices ended with it, most frequent first."""
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            if outcome.error:
                counts[outcome.error] = counts.get(outcome.error, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "devices": self.devices,
            "booted": self.booted,
            "verified": self.verified,
            "failed": self.failed,
            "p50_seconds": round(self.p50_seconds, 4),
            "p99_seconds": round(self.p99_seconds, 4),
            "bytes_downloaded": self.bytes_downloaded,
            "wall_seconds": round(self.wall_seconds, 3),
            "errors": self.errors(),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }


def nearest_rank(ordered: list[float], percent: float) -> float:
    """The `percent`-th percentile of an ascending list by nearest rank; 0 when empty."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]
