"""One entry's worth of compute: CPU seconds, the energy they drew, and its emissions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JOULES_PER_KWH = 3_600_000.0


@dataclass(frozen=True)
class EnergyCost:
    """CPU seconds with the joules and grams of CO2e they were converted to.

    Joules are fixed where the CPU time was measured (that machine's power model);
    grams follow from the joules and the grid the work ran on. Costs add up, so a
    phase, a search or a whole fleet is the sum of its parts.
    """

    cpu_seconds: float = 0.0
    joules: float = 0.0
    co2e_grams: float = 0.0

    def __add__(self, other: EnergyCost) -> EnergyCost:
        return EnergyCost(
            self.cpu_seconds + other.cpu_seconds,
            self.joules + other.joules,
            self.co2e_grams + other.co2e_grams,
        )

    def scaled(self, factor: float) -> EnergyCost:
        return EnergyCost(self.cpu_seconds * factor, self.joules * factor, self.co2e_grams * factor)

    @property
    def kwh(self) -> float:
        return self.joules / JOULES_PER_KWH

    def to_dict(self) -> dict[str, float]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "joules": self.joules,
            "co2e_grams": self.co2e_grams,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnergyCost:
        return cls(
            float(data.get("cpu_seconds", 0.0)),
            float(data.get("joules", 0.0)),
            float(data.get("co2e_grams", 0.0)),
        )


ZERO = EnergyCost()


def total(costs: list[EnergyCost] | tuple[EnergyCost, ...]) -> EnergyCost:
    result = ZERO
    for cost in costs:
        result = result + cost
    return result
