"""How many watts one busy core draws: configured, measured by RAPL, or a TDP default.

The documented default follows codecarbon's fallback for a CPU it cannot identify: a
package TDP of 85 W, drawn in proportion to load, so one fully busy logical core draws
``85 W / logical cores``. It is an estimate with a wide error (a cloud vCPU is a slice
of a bigger package; an embedded core draws a few watts), which is why the operator can
configure the watts per core or the package TDP, and why RAPL wins when it is readable.

Environment (read once, where the process starts):

- ``OFA_FLEET_CPU_WATTS_PER_CORE``: watts one busy core draws;
- ``OFA_FLEET_CPU_TDP_WATTS``: the package's TDP, spread over the logical cores.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ofa_fleet.carbon.rapl import RaplCounters
from ofa_fleet.errors import InvalidArgumentError

DEFAULT_TDP_WATTS = 85.0
CONFIGURED, CONFIGURED_TDP, RAPL, TDP_DEFAULT = (
    "configured",
    "configured-tdp",
    "rapl",
    "tdp-default",
)


@dataclass(frozen=True)
class PowerModel:
    """Watts per busy core, and where that figure came from (`source`).

    With ``source == "rapl"`` the meter reads the package counters and
    ``watts_per_core`` is only the fallback for work it cannot read them around.
    """

    watts_per_core: float
    source: str
    rapl: RaplCounters | None = None

    def joules(self, cpu_seconds: float) -> float:
        return cpu_seconds * self.watts_per_core

    def describe(self) -> dict[str, object]:
        return {"watts_per_core": round(self.watts_per_core, 4), "source": self.source}


def _positive(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgumentError(f"{name} must be a number of watts, got {raw!r}") from None
    if not value > 0 or value > 10_000:
        raise InvalidArgumentError(f"{name} must be between 0 and 10000 watts, got {raw!r}")
    return value


def detect_power_model(
    env: Mapping[str, str] | None = None,
    cpu_count: int | None = None,
    rapl: RaplCounters | None = None,
    probe_rapl: bool = True,
) -> PowerModel:
    """The first of: configured watts per core, configured TDP, RAPL, the TDP default."""
    env = os.environ if env is None else env
    cores = cpu_count or os.cpu_count() or 1
    per_core = _positive(env, "OFA_FLEET_CPU_WATTS_PER_CORE")
    if per_core is not None:
        return PowerModel(per_core, CONFIGURED)
    tdp = _positive(env, "OFA_FLEET_CPU_TDP_WATTS")
    if tdp is not None:
        return PowerModel(tdp / cores, CONFIGURED_TDP)
    counters = rapl if rapl is not None else (RaplCounters.discover() if probe_rapl else None)
    if counters is not None:
        return PowerModel(DEFAULT_TDP_WATTS / cores, RAPL, counters)
    return PowerModel(DEFAULT_TDP_WATTS / cores, TDP_DEFAULT)
