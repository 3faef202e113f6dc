"""Intel RAPL package energy counters, where the kernel exposes them to us.

RAPL counts microjoules per CPU package in ``/sys/class/powercap/intel-rapl:N``; the
counter wraps at ``max_energy_range_uj``. Cloud VMs and containers usually hide it, and
since Linux 5.10 reading it needs root on most distributions, so its absence is normal
and the caller falls back to a modelled power per core.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")
_PACKAGE = re.compile(r"^intel-rapl:\d+$")  # packages; "intel-rapl:0:0" are sub-domains


@dataclass(frozen=True)
class RaplDomain:
    path: Path
    max_range_uj: int

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


class RaplCounters:
    """The readable package domains; `read()` is their summed microjoules."""

    def __init__(self, domains: list[RaplDomain]) -> None:
        self.domains = domains

    @classmethod
    def discover(cls, root: Path = POWERCAP) -> RaplCounters | None:
        """The package counters under ``root``, or None when none can be read."""
        if not root.is_dir():
            return None
        domains = []
        for entry in sorted(root.iterdir()):
            if not _PACKAGE.match(entry.name):
                continue
            try:
                domain = RaplDomain(entry, int((entry / "max_energy_range_uj").read_text()))
                domain.read_uj()
            except (OSError, ValueError):
                continue
            domains.append(domain)
        return cls(domains) if domains else None

    def read(self) -> list[int]:
        return [domain.read_uj() for domain in self.domains]

    def joules_between(self, before: list[int], after: list[int]) -> float:
        """Energy between two readings, allowing each counter to have wrapped once."""
        total_uj = 0
        for domain, start, end in zip(self.domains, before, after, strict=True):
            delta = end - start
            if delta < 0:
                delta += domain.max_range_uj
            total_uj += delta
        return total_uj / 1e6


def busy_cpu_seconds(stat: Path = Path("/proc/stat")) -> float | None:
    """CPU seconds every core of the machine spent not idle, since boot.

    RAPL measures the whole package, so an activity is charged the package energy in
    proportion to its own CPU seconds out of the machine's busy seconds.
    """
    try:
        first = stat.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if first[0] != "cpu":
        return None
    ticks = [int(value) for value in first[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / 100.0  # USER_HZ is 100 on every Linux ABI
