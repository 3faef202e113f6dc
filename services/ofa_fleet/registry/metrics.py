"""What the registry reports to Prometheus: devices per fleet, their status reports, and
how long their boots took to run a model.

Device counts are read from the database at scrape time (one grouped count) rather than
kept in memory: several registry replicas share one database, and each must report the
whole fleet, not the devices that happened to enrol through it. Labels are fleet names,
which operators create and which stay few; device ids never become labels.

Boot-to-model seconds are measured by the device (it alone sees its boot start) and sent
with the status report that names the model: the registry is where every boot ends.

So is what each boot's on-device profiling drew: the registry counts it under the fleet-wide
energy, CO2e and CPU-time counters with ``activity="device_profiling"``; delivery exports
the other activities of the carbon ledger under the same names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ofa_fleet.carbon.activities import DEVICE_PROFILING
from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.registry.store import RegistryStore

log = logging.getLogger("ofa_fleet.registry")

# From a cached model on a fast link (well under a second) to a slow link's download.
BOOT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class RegistryMetrics:
    def __init__(self, registry: CollectorRegistry, store: RegistryStore) -> None:
        self._reports = Counter(
            "ofa_fleet_device_reports",
            "Status reports from devices, by fleet and outcome (error: the report carried errors).",
            ["fleet", "outcome"],
            registry=registry,
        )
        self._boots = Histogram(
            "ofa_fleet_boot_to_model_seconds",
            "Seconds from a device's boot start (before its first GetModelManifest) to the model "
            "running, as devices report them.",
            buckets=BOOT_BUCKETS,
            registry=registry,
        )
        registry.register(DeviceCounts(store))
        self._joules = _activity_counter(
            registry, "ofa_fleet_energy_joules", "Joules drawn by the system's compute"
        )
        self._grams = _activity_counter(
            registry, "ofa_fleet_co2e_grams", "Grams of CO2e emitted by the system's compute"
        )
        self._cpu_seconds = _activity_counter(
            registry, "ofa_fleet_cpu_seconds", "CPU seconds of the system's compute"
        )

    def reported(
        self,
        fleet: str,
        errors: int,
        boot_seconds: float = 0.0,
        profiling: EnergyCost | None = None,
    ) -> None:
        """One status report; ``boot_seconds`` 0 and ``profiling`` None when the device
        measured none."""
        self._reports.labels(fleet, "error" if errors else "ok").inc()
        if boot_seconds > 0:
            self._boots.observe(boot_seconds)
        if profiling is not None:
            self._joules.labels(DEVICE_PROFILING).inc(profiling.joules)
            self._grams.labels(DEVICE_PROFILING).inc(profiling.co2e_grams)
            self._cpu_seconds.labels(DEVICE_PROFILING).inc(profiling.cpu_seconds)


def _activity_counter(registry: CollectorRegistry, name: str, text: str) -> Counter:
    """A carbon-ledger counter by activity; the registry's one activity starts at 0, so a
    rate over it is defined before the first report."""
    counter = Counter(name, f"{text}, by activity.", ["activity"], registry=registry)
    counter.labels(DEVICE_PROFILING)
    return counter


class DeviceCounts(Collector):
    def __init__(self, store: RegistryStore) -> None:
        self.store = store

    def describe(self) -> list[GaugeMetricFamily]:
        return [self._family()]  # no database query when the collector is registered

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        try:
            counts = self.store.device_counts()
        except Exception:  # a scrape must not fail because the database blinked
            log.exception("could not count devices for /metrics")
            return
        for fleet, count in sorted(counts.items()):
            family.add_metric([fleet], count)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "ofa_fleet_devices_registered", "Devices enrolled in each fleet.", labels=["fleet"]
        )
