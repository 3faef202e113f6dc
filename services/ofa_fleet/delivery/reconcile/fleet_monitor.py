"""The fleet monitor: acts on what devices report, a profile at a time.

The reconciler follows the registry's change feed and tells the monitor what changed: a
device (it reported, enrolled or left), a fleet (its policy), a profile (its budget, or
its current model here). The monitor gathers those into dirty profiles and, at most once
per `settle_seconds`, looks at each: its fleets' devices and their last reports
(`device_reports`), then

- advances every staged fleet's rollout (`rollout`, kept in `rollout_store`), and
- asks for a new model when the devices measure the current one over budget
  (`over_budget`).

Like the reconciler it acts on the state it reads, not on the events, so a missed or
repeated event costs nothing: a full sweep every `sweep_seconds` catches up anyway, and
a restart resumes from what the database holds.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from ofa_fleet.contract.rollout import RolloutStrategy, strategy_of
from ofa_fleet.delivery import rollout as rules
from ofa_fleet.delivery.fleets.device_reports import DeviceReports
from ofa_fleet.delivery.fleets.fleet_view import FleetView, fleet_view
from ofa_fleet.delivery.fleets.targets import fleet_target
from ofa_fleet.delivery.reconcile.metrics import DeliveryMetrics
from ofa_fleet.delivery.reconcile.over_budget import DEFAULT_MIN_REPORTS, OverBudget
from ofa_fleet.delivery.rollout import DeviceReport
from ofa_fleet.delivery.store.model_store import ModelRecord, ModelStore
from ofa_fleet.delivery.store.rollout_store import RolloutStore
from ofa_fleet.delivery.store.specializations import Specializations
from ofa_fleet.errors import NotFoundError, OfaFleetError
from ofa_fleet.hardware.profile_proto import budget_ms
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.storage.lru import Lru
from ofa_fleet.v1 import registry_pb2_grpc

log = logging.getLogger("ofa_fleet.fleet_monitor")
PREDICTIONS_KEPT = 1024  # models' predicted latencies remembered (a few fleets' worth each)


@dataclass(frozen=True)
class MonitorSettings:
    settle_seconds: float = 1.0
    sweep_seconds: float = 30.0
    over_budget_min_reports: int = DEFAULT_MIN_REPORTS


class FleetMonitor:
    def __init__(
        self,
        registry: registry_pb2_grpc.RegistryServiceStub,
        token: str,
        store: ModelStore,
        ledger: Specializations,
        wake: Callable[[str, str], None],
        changed: Callable[[], None] = lambda: None,
        settings: MonitorSettings | None = None,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self.settings = settings or MonitorSettings()
        self.metrics = metrics or DeliveryMetrics(CollectorRegistry())
        self.registry = RegistryClient(registry, token)
        self.reports = DeviceReports(self.registry)
        self.store = store
        self.rollouts = RolloutStore(store.database)
        self.over_budget = OverBudget(ledger, wake, self.settings.over_budget_min_reports)
        self.changed = changed  # targets moved: this replica's watchers look again
        self._fleet_profiles: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._sweep_due = True
        # (profile, sha256) -> the model's predicted latency; a manifest never changes, and
        # a long-lived replica sees every model ever made, so only the recent ones stay.
        self._predicted: Lru[tuple[str, str], float | None] = Lru(max_entries=PREDICTIONS_KEPT)

    # -------------------------------------------------------------- what changed

    def device_changed(self, fleet: str) -> None:
        profile = self._fleet_profiles.get(fleet)
        if profile is None:
            self._sweep_due = True  # a fleet not seen yet: the sweep finds its profile
        else:
            self._dirty.add(profile)

    def fleet_changed(self, fleet: str, profile: str) -> None:
        self._fleet_profiles[fleet] = profile
        self._dirty.add(profile)

    def profile_changed(self, profile: str) -> None:
        self._dirty.add(profile)

    def anything_changed(self) -> None:
        """Changes were missed (the feed's cursor expired): look at every fleet soon."""
        self._sweep_due = True

    # -------------------------------------------------------------- the loop

    async def run(self) -> None:
        next_sweep = 0.0
        while True:
            due = self._sweep_due or time.monotonic() >= next_sweep
            if due and await self._sweep():
                next_sweep = time.monotonic() + self.settings.sweep_seconds
            dirty, self._dirty = self._dirty, set()
            try:
                fleets = await self._fleets_now() if dirty else []
            except OfaFleetError as error:  # the registry is away: look again later
                log.warning("fleet monitor", extra={"error": str(error)})
                self._dirty |= dirty
                dirty = set()
            for profile in sorted(dirty):
                try:
                    await self.evaluate_profile(profile, fleets)
                except OfaFleetError as error:
                    self._dirty.add(profile)
                    log.warning("fleet monitor", extra={"profile": profile, "error": str(error)})
                except Exception:  # one profile's fault must not stop every rollout
                    log.exception("fleet monitor failed", extra={"profile": profile})
            await asyncio.sleep(self.settings.settle_seconds)

    async def _sweep(self) -> bool:
        """Every profile that has fleets becomes dirty; False when the registry is away."""
        try:
            fleets = await self._fleets_now()
        except OfaFleetError as error:
            log.warning("fleet monitor sweep", extra={"error": str(error)})
            return False
        self._sweep_due = False
        self._fleet_profiles = {f.name: f.profile for f in fleets}
        self.metrics.fleets_listed(set(self._fleet_profiles))
        await asyncio.to_thread(self.metrics.refresh_carbon)  # another replica's models too
        self._dirty.update(self._fleet_profiles.values())
        return True

    async def evaluate_profile(self, name: str, fleets: list[FleetView] | None = None) -> None:
        """Look at one profile's fleets and devices now and act (see the module doc).

        ``fleets``: every fleet, when the caller just listed them for several profiles.
        """
        try:
            profile = await self.registry.get_profile(name)
        except NotFoundError:
            return
        budget = budget_ms(profile.spec.constraints)
        current = await asyncio.to_thread(self.store.current, name)
        listed = await self._fleets_now() if fleets is None else fleets
        fleets = [f for f in listed if f.profile == name]
        every_device: list[DeviceReport] = []
        moved = False
        for fleet in fleets:
            self._fleet_profiles[fleet.name] = fleet.profile
            try:
                devices = await self.reports.of_fleet(fleet.name)
            except NotFoundError:  # deleted since the listing
                continue
            every_device += devices
            moved |= await asyncio.to_thread(self._roll, fleet, current, devices, budget)
            await asyncio.to_thread(self._measure, fleet, devices)
        if moved:
            self.changed()
        if current is not None:
            verdict = await self.over_budget.check(name, current, budget, every_device)
            if verdict is not None:
                log.warning(
                    "model over budget: specializing again",
                    extra={
                        "profile": name,
                        "sha256": verdict.sha256,
                        "p95_ms": round(verdict.latency_ms, 4),
                        "budget_ms": budget,
                        "over": verdict.over,
                        "reports": verdict.reports,
                    },
                )

    async def _fleets_now(self) -> list[FleetView]:
        return [fleet_view(f) for f in await self.registry.list_fleets()]

    def _measure(self, fleet: FleetView, devices: list[DeviceReport]) -> None:
        """Coverage by the target the policy gives now (after this pass's rollout step)."""
        try:
            target = fleet_target(self.store, self.rollouts, fleet)
        except OfaFleetError:  # e.g. pinned to a model gone from the store: no coverage
            return
        predicted = functools.partial(self._predicted_ms, fleet.profile)
        self.metrics.fleet_seen(fleet.name, fleet.profile, target, devices, predicted)

    def _predicted_ms(self, profile: str, sha256: str) -> float | None:
        """What the profile's model of these bytes was predicted to take (its own figures:
        the same bytes made for another profile were predicted for other hardware)."""
        key = (profile, sha256)
        if key in self._predicted:
            return self._predicted.get(key)
        try:
            figures = self.store.record(profile, sha256).manifest.model_figures()
        except OfaFleetError:  # a model this store never held
            return None
        self._predicted.put(key, figures.predicted_latency_ms)
        return figures.predicted_latency_ms

    def _roll(
        self,
        fleet: FleetView,
        current: ModelRecord | None,
        devices: list[DeviceReport],
        budget_ms: float,
    ) -> bool:
        """Start or advance the fleet's rollout; True when what its devices run moved."""
        stored = self.rollouts.get(fleet.name)
        strategy = strategy_of(fleet.rollout)
        if strategy is RolloutStrategy.PINNED:
            return False  # kept as it was: an unpin resumes it
        if strategy is not RolloutStrategy.STAGED or (
            stored is not None and stored.profile_name != fleet.profile
        ):
            if stored is not None:  # back to staged later starts from the model it runs
                self.rollouts.delete(fleet.name)
            if strategy is not RolloutStrategy.STAGED:
                return False
            stored = None
        if current is None:
            return False
        now = time.time_ns() // 1000
        rollout = stored
        if rollout is None or rollout.to_sha256 != current.sha256:
            staged = fleet.rollout.staged
            policy = rules.StagedPolicy(
                staged.canary_percent, staged.failure_threshold_percent, staged.min_success_reports
            )
            rollout = rules.start(fleet.name, fleet.profile, policy, current.sha256, stored, now)
        advanced = rules.advance(rollout, devices, budget_ms, now)
        if advanced == stored:
            return False
        self.rollouts.save(advanced)
        if stored is None or advanced.state != stored.state:
            log.info(
                "rollout",
                extra={
                    "fleet": fleet.name,
                    "state": advanced.state,
                    "from": advanced.from_sha256,
                    "to": advanced.to_sha256,
                    "canaries": len(advanced.canaries),
                    "successes": advanced.successes,
                    "failures": advanced.failures,
                },
            )
        return True
