"""Metering one activity: CPU seconds of this process (or thread) and their energy.

`EnergyModel` joins a power model and a grid. ``with model.meter() as reading:`` measures
the block's CPU time, all threads of the process by default (torch and onnxruntime
compute on their own threads), or only the calling thread with ``scope="thread"`` for work
that shares its process with unrelated threads (a search running inside a server).

With RAPL readable, the block is charged the package energy in the same interval in
proportion to its share of the machine's busy CPU seconds; otherwise its CPU seconds times
the modelled watts per core.

Work on other processes (Ray workers) is metered there with its own `meter()`, and only
the joules and CPU seconds travel back to be added up; the grams are set by the model of
the process that records the entry (`EnergyModel.cost_of`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.carbon.grid import GridIntensity, grid_from_environment
from ofa_fleet.carbon.power import PowerModel, detect_power_model
from ofa_fleet.carbon.rapl import busy_cpu_seconds


@dataclass
class Reading:
    """What one `meter()` block measured; filled in when the block exits."""

    cpu_seconds: float = 0.0
    joules: float = 0.0
    wall_seconds: float = 0.0
    cost: EnergyCost = field(default_factory=EnergyCost)


@dataclass(frozen=True)
class EnergyModel:
    power: PowerModel
    grid: GridIntensity

    @classmethod
    def from_environment(cls) -> EnergyModel:
        return cls(detect_power_model(), grid_from_environment())

    def cost_of(self, cpu_seconds: float, joules: float | None = None) -> EnergyCost:
        """An entry for work measured here or elsewhere (``joules`` from its meter)."""
        energy = self.power.joules(cpu_seconds) if joules is None else joules
        return EnergyCost(cpu_seconds, energy, self.grid.grams(energy))

    def describe(self) -> dict[str, Any]:
        return {"power": self.power.describe(), "grid": self.grid.describe()}

    @contextmanager
    def meter(self, scope: Literal["process", "thread"] = "process") -> Iterator[Reading]:
        clock = time.process_time if scope == "process" else time.thread_time
        rapl = self.power.rapl
        reading = Reading()
        rapl_before = rapl.read() if rapl is not None else None
        busy_before = busy_cpu_seconds() if rapl is not None else None
        wall, cpu = time.perf_counter(), clock()
        try:
            yield reading
        finally:
            reading.cpu_seconds = clock() - cpu
            reading.wall_seconds = time.perf_counter() - wall
            reading.joules = self.power.joules(reading.cpu_seconds)
            if rapl is not None and rapl_before is not None:
                busy_after = busy_cpu_seconds()
                package = rapl.joules_between(rapl_before, rapl.read())
                if busy_before is not None and busy_after is not None:
                    busy = max(busy_after - busy_before, reading.cpu_seconds, 1e-9)
                    reading.joules = package * reading.cpu_seconds / busy
            reading.cost = EnergyCost(
                reading.cpu_seconds, reading.joules, self.grid.grams(reading.joules)
            )
