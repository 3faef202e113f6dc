"""Grams of CO2e per kWh of the grid the work ran on: a region's average or a figure.

The built-in regions are rounded annual averages of electricity generation (Ember's
yearly review, 2023 data). They are coarse: a supplier's own figure, or an hourly
marginal one, is better, so ``OFA_FLEET_GRID_G_PER_KWH`` (or ``--grid-intensity``)
overrides the region. The default region is the world average.

Environment: ``OFA_FLEET_GRID_REGION`` (a key of `REGIONS`), ``OFA_FLEET_GRID_G_PER_KWH``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ofa_fleet.errors import InvalidArgumentError

REGIONS: dict[str, float] = {
    "world": 480.0,
    "eu": 245.0,
    "us": 370.0,
    "cn": 580.0,
    "in": 710.0,
    "jp": 485.0,
    "de": 380.0,
    "fr": 55.0,
    "gb": 240.0,
    "pl": 660.0,
    "se": 40.0,
    "no": 30.0,
}
DEFAULT_REGION = "world"
MAX_G_PER_KWH = 2000.0


@dataclass(frozen=True)
class GridIntensity:
    g_per_kwh: float
    region: str  # a key of REGIONS, or "configured" for an explicit figure

    def grams(self, joules: float) -> float:
        return joules / 3_600_000.0 * self.g_per_kwh

    def describe(self) -> dict[str, object]:
        return {"g_per_kwh": self.g_per_kwh, "region": self.region}


def grid_for(region: str | None = None, g_per_kwh: float | None = None) -> GridIntensity:
    """An explicit figure wins over a region; an unknown region is an error, not a guess."""
    if g_per_kwh is not None:
        if not 0 <= g_per_kwh <= MAX_G_PER_KWH:
            raise InvalidArgumentError(
                f"grid intensity must be 0-{MAX_G_PER_KWH:g} g/kWh, got {g_per_kwh:g}"
            )
        return GridIntensity(float(g_per_kwh), "configured")
    name = (region or DEFAULT_REGION).strip().lower()
    if name not in REGIONS:
        raise InvalidArgumentError(
            f"unknown grid region {region!r}; known: {', '.join(sorted(REGIONS))} "
            "(or give the intensity in g/kWh)"
        )
    return GridIntensity(REGIONS[name], name)


def grid_from_environment(env: Mapping[str, str] | None = None) -> GridIntensity:
    env = os.environ if env is None else env
    raw = env.get("OFA_FLEET_GRID_G_PER_KWH", "").strip()
    figure = None
    if raw:
        try:
            figure = float(raw)
        except ValueError:
            raise InvalidArgumentError(
                f"OFA_FLEET_GRID_G_PER_KWH must be a number, got {raw!r}"
            ) from None
    return grid_for(env.get("OFA_FLEET_GRID_REGION") or None, figure)
