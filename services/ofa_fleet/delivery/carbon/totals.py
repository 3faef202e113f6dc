"""The fleet's energy, emissions and CPU time by activity, as Prometheus counters.

`ofa_fleet_energy_joules_total`, `ofa_fleet_co2e_grams_total` and
`ofa_fleet_cpu_seconds_total`, labelled by activity: training and predictor_fit (every
supernet's ledger delivery stored) and specialization (every stored model's cost). The
registry exports device_profiling under the same names, so delivery never does: summed
over both servers the counters are the whole fleet's, each activity counted once.

The figures come from delivery's database, not from this process's memory: every replica
reports the same totals, and a restart does not reset them (they only grow as models and
supernets are added). The database is read when something changed (the reconciler stores
a model or a supernet ledger, the fleet monitor sweeps) and at most once a
`max_age_seconds` on a scrape that finds the figures older, so replicas without a
reconciler catch up too; a scrape otherwise reads the cached totals only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from ofa_fleet.carbon import activities
from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.supernet_ledgers import SupernetLedgers

log = logging.getLogger("ofa_fleet.delivery")

MAX_AGE_SECONDS = 60.0
ACTIVITIES = (activities.TRAINING, activities.PREDICTOR_FIT, activities.SPECIALIZATION)


class CarbonTotals(Collector):
    def __init__(
        self, store: ModelStore, ledgers: SupernetLedgers, max_age_seconds: float = MAX_AGE_SECONDS
    ) -> None:
        self.store = store
        self.ledgers = ledgers
        self.max_age_seconds = max_age_seconds
        self._totals: dict[str, EnergyCost] | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def refresh(self) -> dict[str, EnergyCost]:
        """Read the totals from the database now (blocking: call it from a thread)."""
        with self._lock:
            totals = self.ledgers.activity_totals()
            totals[activities.SPECIALIZATION] = self.store.specialization_total()
            self._totals, self._read_at = totals, time.monotonic()
            return totals

    def describe(self) -> list[CounterMetricFamily]:
        return list(_families())  # no database query when the collector is registered

    def collect(self) -> Iterator[CounterMetricFamily]:
        totals = self._totals
        if totals is None or time.monotonic() - self._read_at > self.max_age_seconds:
            try:
                totals = self.refresh()
            except Exception:  # a scrape must not fail because the database blinked
                log.exception("could not read the carbon totals for /metrics")
        if totals is None:
            return
        joules, grams, seconds = _families()
        for activity in ACTIVITIES:
            cost = totals[activity]
            joules.add_metric([activity], cost.joules)
            grams.add_metric([activity], cost.co2e_grams)
            seconds.add_metric([activity], cost.cpu_seconds)
        yield joules
        yield grams
        yield seconds


def _families() -> tuple[CounterMetricFamily, CounterMetricFamily, CounterMetricFamily]:
    # The registry's help texts, word for word: Prometheus sees one metric from two servers.
    return (
        CounterMetricFamily(
            "ofa_fleet_energy_joules", "Joules drawn by the system's compute", labels=["activity"]
        ),
        CounterMetricFamily(
            "ofa_fleet_co2e_grams",
            "Grams of CO2e emitted by the system's compute",
            labels=["activity"],
        ),
        CounterMetricFamily(
            "ofa_fleet_cpu_seconds", "CPU seconds of the system's compute", labels=["activity"]
        ),
    )
