"""What the registry reports to Prometheus: devices per fleet, and their status reports.

Device counts are read from the database at scrape time (one grouped count) rather than
kept in memory: several registry replicas share one database, and each must report the
whole fleet, not the devices that happened to enrol through it. Labels are fleet names,
which operators create and which stay few; device ids never become labels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ofa_fleet.registry.store import RegistryStore

log = logging.getLogger("ofa_fleet.registry")


class RegistryMetrics:
    def __init__(self, registry: CollectorRegistry, store: RegistryStore) -> None:
        self._reports = Counter(
            "ofa_fleet_device_reports",
            "Status reports from devices, by fleet and outcome (error: the report carried errors).",
            ["fleet", "outcome"],
            registry=registry,
        )
        registry.register(DeviceCounts(store))

    def reported(self, fleet: str, errors: int) -> None:
        self._reports.labels(fleet, "error" if errors else "ok").inc()


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
