"""What delivery reports to Prometheus: models served, specializations, coverage.

Labels are profile and fleet names (operators create them and they stay few) and fixed
words (reason, outcome); device ids never become labels. Specialization states are read
from the ledger at scrape time, as the registry counts its devices: the ledger lives in
the database every replica shares, so each replica reports the same truth, not what its
own reconciler happened to do.

Coverage and the latency-prediction ratio come from the fleet monitor, which lists every
fleet's devices with their last reports anyway (every `sweep_seconds`, and soon after a
fleet's devices report): so only the replica running the reconciler exports them.

The carbon counters (energy, CO2e and CPU seconds by activity) are `carbon_metrics`'s,
read from the database like the specialization states.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ofa_fleet.delivery.carbon.totals import CarbonTotals
from ofa_fleet.delivery.fleets.targets import FleetTarget
from ofa_fleet.delivery.rollout import DeviceReport
from ofa_fleet.delivery.store.specializations import Specializations, SpecializationStatus

log = logging.getLogger("ofa_fleet.delivery")

# A search runs from seconds (search's cache) to minutes (a cold search on a small cluster).
SPECIALIZATION_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)
# Measured / predicted: 1 is a perfect predictor; the alert fires past 1.5 or under 0.67.
RATIO_BUCKETS = (0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0)


class DeliveryMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        ledger: Specializations | None = None,
        carbon: CarbonTotals | None = None,
    ) -> None:
        self._served = Counter(
            "ofa_fleet_models_served",
            "ReadModel streams that sent a model to its last byte.",
            ["profile"],
            registry=registry,
        )
        self._bytes = Counter(
            "ofa_fleet_model_bytes_served",
            "Model bytes sent by ReadModel (resumed downloads count what was sent).",
            ["profile"],
            registry=registry,
        )
        self._up_to_date = Counter(
            "ofa_fleet_model_manifest_up_to_date",
            "GetModelManifest calls answered up to date: the device already had its model.",
            ["profile"],
            registry=registry,
        )
        self._seconds = Histogram(
            "ofa_fleet_specialization_seconds",
            "Seconds from asking search to the stored model, by why one was needed "
            "(successful specializations only).",
            ["reason"],
            buckets=SPECIALIZATION_BUCKETS,
            registry=registry,
        )
        self._outcomes = Counter(
            "ofa_fleet_specializations",
            "Specializations the reconciler finished, by outcome (ok, failed).",
            ["outcome"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "ofa_fleet_reconciler_queue_depth",
            "Profiles waiting for the reconciler to look at them.",
            registry=registry,
        )
        self._on_current = Gauge(
            "ofa_fleet_devices_on_current_model",
            "Devices whose last report names the model their fleet's policy targets for them.",
            ["fleet"],
            registry=registry,
        )
        self._coverage = Gauge(
            "ofa_fleet_fleet_coverage_ratio",
            "Share of the fleet's devices on the model its policy targets for them (0-1).",
            ["fleet"],
            registry=registry,
        )
        self._ratio = Histogram(
            "ofa_fleet_latency_prediction_ratio",
            "Device-measured latency over the model's predicted latency, one per report.",
            ["profile"],
            buckets=RATIO_BUCKETS,
            registry=registry,
        )
        self._fleets: set[str] = set()
        self._observed: dict[str, int] = {}  # device id -> revision of its last counted report
        if ledger is not None:
            registry.register(SpecializationStates(ledger))
        self.carbon = carbon
        if carbon is not None:
            registry.register(carbon)

    def refresh_carbon(self) -> None:
        """Read the carbon totals again after they changed (blocking: call from a thread)."""
        if self.carbon is None:
            return
        try:
            self.carbon.refresh()
        except Exception:  # the next refresh, or the next stale scrape, reads them
            log.exception("could not read the carbon totals")

    # ------------------------------------------------------- GetModelManifest, ReadModel

    def sent(self, profile: str, size: int) -> None:
        self._bytes.labels(profile).inc(size)

    def served(self, profile: str) -> None:
        self._served.labels(profile).inc()

    def up_to_date(self, profile: str) -> None:
        self._up_to_date.labels(profile).inc()

    # ------------------------------------------------------------------ reconciler

    def specialized(self, reason: str, ok: bool, seconds: float) -> None:
        self._outcomes.labels("ok" if ok else "failed").inc()
        if ok:
            self._seconds.labels(reason or "missing").observe(seconds)

    # ------------------------------------------------------------------ fleet monitor

    def fleet_seen(
        self,
        fleet: str,
        profile: str,
        target: FleetTarget,
        devices: Sequence[DeviceReport],
        predicted_ms: Callable[[str], float | None],
    ) -> None:
        """One fleet's devices as just listed: its coverage, and each new report's ratio.

        ``predicted_ms``: the predicted latency of a model by sha256 (None when unknown).
        """
        on_current = 0
        for device in devices:
            wanted = target.for_device(device.device_id)
            if device.reported and wanted is not None and device.sha256 == wanted.sha256:
                on_current += 1
            if device.reported and self._observed.get(device.device_id) != device.revision:
                self._observed[device.device_id] = device.revision
                self._observe_latency(profile, device, predicted_ms)
        self._fleets.add(fleet)
        self._on_current.labels(fleet).set(on_current)
        if devices:
            self._coverage.labels(fleet).set(on_current / len(devices))
        else:  # no devices: no share to speak of
            self._forget(self._coverage, fleet)

    def fleets_listed(self, fleets: set[str]) -> None:
        """Fleets gone from the registry stop being reported."""
        for gone in self._fleets - fleets:
            self._forget(self._on_current, gone)
            self._forget(self._coverage, gone)
        self._fleets &= fleets

    def _observe_latency(
        self, profile: str, device: DeviceReport, predicted_ms: Callable[[str], float | None]
    ) -> None:
        if device.latency_ms <= 0 or not device.sha256:
            return
        predicted = predicted_ms(device.sha256)
        if predicted is not None and predicted > 0:
            self._ratio.labels(profile).observe(device.latency_ms / predicted)

    @staticmethod
    def _forget(gauge: Gauge, fleet: str) -> None:
        with contextlib.suppress(KeyError):  # never set
            gauge.remove(fleet)


class SpecializationStates(Collector):
    """Profiles failing, infeasible and pending in the ledger, counted when Prometheus
    scrapes."""

    COUNTED = (
        SpecializationStatus.FAILING,
        SpecializationStatus.INFEASIBLE,
        SpecializationStatus.PENDING,
    )

    def __init__(self, ledger: Specializations) -> None:
        self.ledger = ledger

    def describe(self) -> list[GaugeMetricFamily]:
        return list(self._families())  # no database query when the collector is registered

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = self._families()
        try:
            states = [s.state for s in self.ledger.all()]
        except Exception:  # a scrape must not fail because the database blinked
            log.exception("could not read specialization states for /metrics")
            return
        for status, family in zip(self.COUNTED, families, strict=True):
            family.add_metric([], states.count(status))
            yield family

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "ofa_fleet_specializations_failing",
                "Profiles whose last specialization failed (retried with backoff).",
            ),
            GaugeMetricFamily(
                "ofa_fleet_specializations_infeasible",
                "Profiles no subnet fits (waiting for an operator to change them).",
            ),
            GaugeMetricFamily(
                "ofa_fleet_specializations_pending",
                "Profiles waiting for a model: being specialized or not yet finished.",
            ),
        )
