"""A profile of the machine this process runs on, from what the OS reports.

``predict --lut`` needs a profile for the machine that measured the table; nothing
about its budget is known, so the constraints are the machine's own limits.
"""

from __future__ import annotations

import os
import platform
import shutil

from ofa_fleet.hardware.latency_table import LatencyTable
from ofa_fleet.hardware.profile import (
    ARCHITECTURES,
    Constraints,
    CpuSpec,
    HardwareProfile,
    RuntimeSpec,
)
from ofa_fleet.inference.graph_optimization import DEFAULT_GRAPH_OPTIMIZATION

_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64", "armv7l": "armv7"}


def local_profile(threads: int, table: LatencyTable | None = None) -> HardwareProfile:
    machine = platform.machine().lower()
    architecture = _MACHINE_ALIASES.get(machine, machine)
    if architecture not in ARCHITECTURES:
        architecture = "x86_64"
    cores = os.cpu_count() or 1
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    storage = shutil.disk_usage(".").free or 1
    return HardwareProfile(
        name=f"local-{platform.node() or 'machine'}",
        cpu=CpuSpec(architecture=architecture, cores=cores, clock_ghz=_clock_ghz()),
        ram_bytes=ram,
        storage_bytes=storage,
        constraints=Constraints(
            latency_budget_ms=1000.0, max_model_bytes=storage, max_peak_memory_bytes=ram
        ),
        # Runs models the way its table was measured, when it has one.
        runtime=RuntimeSpec(
            threads=min(threads, cores),
            graph_optimization=table.graph_optimization
            if table is not None
            else DEFAULT_GRAPH_OPTIMIZATION,
        ),
        latency_table=table,
    )


def _clock_ghz() -> float:
    """Highest ``cpu MHz`` in /proc/cpuinfo; 1 GHz where the OS does not say."""
    best = 0.0
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("cpu mhz"):
                    best = max(best, float(line.split(":", 1)[1]))
    except (OSError, ValueError):
        pass
    return best / 1000.0 if best > 0 else 1.0
