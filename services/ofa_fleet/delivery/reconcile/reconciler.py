"""The reconciler: every profile in the registry gets a current model, and keeps one.

Like a Kubernetes controller it acts on the *difference* between what is and what should
be, never on the events themselves: a change in the registry's feed only says "look at
this profile again". Looking means: if the profile's current model was specialized for
its present revision from the supernet search serves now, nothing; otherwise ask search
to `Specialize` it, sign and store the result, and make it current. That makes it
idempotent (looking twice does no harm) and restart-safe (the feed cursor and each
profile's state live in the database, and a search interrupted by a restart is asked
again; search's cache answers a repeat at once). Search names its supernet version
(`supernet_version`); models made from another one are stale.

Profiles are specialized concurrently up to `concurrency`; a failure is recorded with its
message, and the profile is looked at again after an exponential backoff, never in a
hot loop. A profile no subnet fits (search says PROFILE_INFEASIBLE) is not tried again
at all until the profile or the supernet changes: nothing else could change the answer.

An operator's Respecialize is a long-running operation kept in the database
(`store.operations`): the leader takes up every operation not done (those started on
another replica, or left open by the last leader) as a forced specialization, and ends
each with the outcome of the first attempt that began after it: the model made current,
or why none can be (the profile is gone, or no subnet fits it). A failed attempt leaves
it open for the retry after the backoff.

The same feed carries what devices report; the reconciler hands those changes to its
`FleetMonitor`, which advances staged rollouts and asks for a new model ("over-budget")
when the devices measure the current one over budget. The latencies it learnt join the
profile's own `latency_reports` in every later `Specialize`, so search calibrates on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from grpc import aio
from prometheus_client import CollectorRegistry

from ofa_fleet.carbon.convert import cost_from_proto
from ofa_fleet.carbon.cost import ZERO
from ofa_fleet.contract.error_details import CURSOR_EXPIRED, PROFILE_INFEASIBLE
from ofa_fleet.contract.error_details import decode as decode_details
from ofa_fleet.contract.manifest import Manifest, ModelFigures
from ofa_fleet.contract.search_words import latency_source_from_proto
from ofa_fleet.delivery.key_rotation import sign_with_current_key
from ofa_fleet.delivery.reconcile.fleet_monitor import FleetMonitor, MonitorSettings
from ofa_fleet.delivery.reconcile.metrics import DeliveryMetrics
from ofa_fleet.delivery.reconcile.supernet_version import POLL_SECONDS as SUPERNET_POLL_SECONDS
from ofa_fleet.delivery.reconcile.supernet_version import SupernetVersion
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.operations import RETENTION_SECONDS, OperationRecord, Operations
from ofa_fleet.delivery.store.specializations import (
    BackoffPolicy,
    Specializations,
    SpecializationStatus,
)
from ofa_fleet.delivery.store.supernet_ledgers import SupernetLedgers
from ofa_fleet.errors import NotFoundError, OfaFleetError, UnavailableError
from ofa_fleet.search.stream import SpecializeStream
from ofa_fleet.serving.client import bearer
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.v1 import common_pb2, registry_pb2, registry_pb2_grpc, search_pb2, search_pb2_grpc

log = logging.getLogger("ofa_fleet.reconciler")

FEED = "registry"
WATCH_RETRY_SECONDS = 2.0
PRUNE_EVERY_SECONDS = 600.0


@dataclass(frozen=True)
class ReconcilerSettings:
    concurrency: int = 2
    specialize_timeout_seconds: float = 600.0
    retry_poll_seconds: float = 1.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    options: search_pb2.SearchOptions = field(default_factory=search_pb2.SearchOptions)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    supernet_poll_seconds: float = SUPERNET_POLL_SECONDS


class Reconciler:
    """Runs until `stop`; `wake` asks it to look at one profile (e.g. an operator's request)."""

    def __init__(
        self,
        store: ModelStore,
        ledger: Specializations,
        signer: ModelSigner,
        registry: registry_pb2_grpc.RegistryServiceStub,
        search: search_pb2_grpc.SearchServiceStub,
        token: str,
        settings: ReconcilerSettings | None = None,
        changed: Callable[[], None] = lambda: None,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self.changed = changed
        self.metrics = metrics or DeliveryMetrics(CollectorRegistry())
        self.store = store
        self.ledger = ledger
        self.signer = signer
        self.registry = registry  # the change feed's stream
        self.profiles = RegistryClient(registry, token)
        self.search = search
        self.token = token
        self.settings = settings or ReconcilerSettings()
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        # A forced reason per queued profile: kept apart from the queue, so that one given
        # while the profile already waits there (an operator's Respecialize after a
        # change in the feed) is not lost.
        self._reasons: dict[str, str] = {}
        # One reconcile per profile at a time: a profile woken while it is being worked on
        # waits for that to finish, then sees what it recorded (current, infeasible, ...).
        self._profile_locks: dict[str, asyncio.Lock] = {}
        self.operations = Operations(store.database)
        # Open operations this replica has asked a specialization for; a new leader starts
        # with none, so it takes up every one the last left open.
        self._taken: set[str] = set()
        self._next_prune = 0.0
        self.metrics.queue_depth.set_function(self._queue.qsize)
        self._stopped = asyncio.Event()
        self.monitor = FleetMonitor(
            registry, token, store, ledger, self.wake, changed, self.settings.monitor, self.metrics
        )
        self.supernet = SupernetVersion(
            search,
            token,
            self.settings.supernet_poll_seconds,
            SupernetLedgers(store.database),
            self.metrics.refresh_carbon,
        )

    def wake(self, profile_name: str, reason: str = "") -> None:
        """Look at ``profile_name`` soon; ``reason`` forces a new model (e.g. "operator"),
        also when the profile is already queued."""
        if reason:
            self._reasons[profile_name] = reason
        if profile_name not in self._queued:
            self._queued.add(profile_name)
            self._queue.put_nowait(profile_name)

    def operation_started(self, record: OperationRecord) -> None:
        """An operator's Respecialize taken by this replica: looked at now, when this
        replica leads (a standby's leader takes it up from the database)."""
        self._taken.add(record.name)
        self.wake(record.profile_name, "operator")

    async def run(self) -> None:
        # Once more as leader: an earlier leader that still held a retired key (a rolling
        # update of a rotation) may have signed models with it after this replica started.
        await asyncio.to_thread(sign_with_current_key, self.store, self.signer)
        await self.supernet.refresh()  # before any profile is judged stale or not
        tasks = [
            asyncio.create_task(self.supernet.follow(self._supernet_changed)),
            asyncio.create_task(self._follow_feed()),
            asyncio.create_task(self._retry_failed()),
            asyncio.create_task(self.monitor.run()),
        ]
        tasks += [asyncio.create_task(self._work()) for _ in range(self.settings.concurrency)]
        try:
            await self._stopped.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def stop(self) -> None:
        self._stopped.set()

    # ------------------------------------------------------------------ what to look at

    async def _follow_feed(self) -> None:
        """Every profile once, then every profile change, resuming from the saved cursor."""
        while True:
            try:
                await self._look_at_every_profile()
                cursor = await asyncio.to_thread(self.ledger.cursor, FEED)
                async for change in self.registry.WatchChanges(
                    registry_pb2.WatchChangesRequest(after_cursor=cursor),
                    metadata=bearer(self.token),
                ):
                    if change.kind == registry_pb2.CHANGE_KIND_PROFILE:
                        if change.operation == registry_pb2.CHANGE_OPERATION_DELETED:
                            await asyncio.to_thread(self.ledger.forget, change.id)
                        else:
                            self.wake(change.id)
                            self.monitor.profile_changed(change.id)
                    elif change.kind == registry_pb2.CHANGE_KIND_FLEET:
                        self.monitor.fleet_changed(change.id, change.parent)
                    elif change.kind == registry_pb2.CHANGE_KIND_DEVICE:
                        self.monitor.device_changed(change.parent)
                    await asyncio.to_thread(self.ledger.save_cursor, FEED, change.cursor)
            except aio.AioRpcError as error:
                if await self._expired(error):
                    continue  # everything is looked at again, then followed from the head
                log.warning(
                    "registry feed interrupted",
                    extra={"code": error.code().name, "error": error.details()},
                )
            except UnavailableError as error:  # listing the profiles failed
                log.warning("registry feed interrupted", extra={"error": str(error)})
            await asyncio.sleep(WATCH_RETRY_SECONDS)

    async def _expired(self, error: aio.AioRpcError) -> bool:
        """Whether the registry no longer holds the changes after the saved cursor; if so,
        the cursor moves to the registry's newest change, and every profile and fleet is
        looked at again (which is what the missed changes would have asked for)."""
        details = decode_details(error.trailing_metadata())
        if details is None or details.reason != CURSOR_EXPIRED:
            return False
        head = int(details.facts.get("head_cursor", "0"))
        log.warning("registry feed expired", extra={"error": error.details(), "cursor": head})
        self.monitor.anything_changed()
        await asyncio.to_thread(self.ledger.save_cursor, FEED, head)
        return True

    async def _look_at_every_profile(self) -> None:
        for profile in await self.profiles.list_profiles():
            self.wake(profile.spec.name)

    async def _supernet_changed(self, version: str) -> None:
        """Every profile is looked at; those with models of another supernet go stale."""
        try:
            await self._look_at_every_profile()
        except UnavailableError as error:  # the feed's own pass will look at them all again
            log.warning(
                "could not list profiles after a supernet change", extra={"error": str(error)}
            )

    async def _retry_failed(self) -> None:
        while True:
            await asyncio.sleep(self.settings.retry_poll_seconds)
            await self._take_up_operations()
            now_us = time.time_ns() // 1000
            for state in await asyncio.to_thread(self.ledger.all):
                if state.state == SpecializationStatus.FAILING and state.next_attempt_us <= now_us:
                    self.wake(state.profile_name)

    async def _take_up_operations(self) -> None:
        """Every open operation not yet acted on here: a forced specialization of its
        profile. Then, now and then, forget those whose retention has passed."""
        running = await asyncio.to_thread(self.operations.running)
        self._taken &= {record.name for record in running}
        for record in running:
            if record.name not in self._taken:
                self._taken.add(record.name)
                self.wake(record.profile_name, "operator")
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
            cutoff_us = time.time_ns() // 1000 - int(RETENTION_SECONDS * 1e6)
            await asyncio.to_thread(self.operations.prune, cutoff_us)

    # ----------------------------------------------------------------------- the work

    async def _work(self) -> None:
        while True:
            name = await self._queue.get()
            self._queued.discard(name)
            reason = self._reasons.pop(name, "")
            try:
                async with self._profile_locks.setdefault(name, asyncio.Lock()):
                    await self.reconcile(name, reason)
            except Exception as error:  # one profile's failure must not stop the others
                log.exception("reconcile failed", extra={"profile": name})
                await asyncio.to_thread(
                    self.ledger.mark_failing, name, f"internal: {error}", self.settings.backoff
                )

    async def reconcile(self, name: str, forced_reason: str = "") -> None:
        """Bring one profile's current model up to date (see the module docstring)."""
        try:
            profile = await self.profiles.get_profile(name)
        except NotFoundError:
            await asyncio.to_thread(self.ledger.forget, name)
            await asyncio.to_thread(
                self.operations.fail,
                await asyncio.to_thread(self.operations.open_for, name),
                grpc.StatusCode.NOT_FOUND,
                f"profile {name!r} was deleted",
            )
            return
        state = await asyncio.to_thread(self.ledger.get, name)
        current = await asyncio.to_thread(self.store.current, name)
        if forced_reason:
            reason = forced_reason
        elif (
            current is None
            or not current.signed_for_its_profile  # carried over by migration 0005
            or state is None
            or state.profile_revision == 0
        ):
            reason = "missing"
        elif state.profile_revision != profile.revision:
            reason = "profile-changed"
        elif self.supernet.is_stale(state.supernet_version):
            reason = "new-supernet"
        elif state.state == SpecializationStatus.CURRENT:
            return
        else:
            reason = "missing"  # an earlier attempt for this revision did not finish
        if (
            state is not None
            and not forced_reason
            and state.infeasible_for(profile.revision, self.supernet.known)
        ):
            return  # no subnet fits: nothing changes until the profile or the supernet does
        waiting = state is not None and state.next_attempt_us > time.time_ns() // 1000
        if (
            waiting
            and state is not None
            and state.failing_for(profile.revision, self.supernet.known)
            and not forced_reason
        ):
            return  # the retry loop wakes it when its backoff has passed (a new revision
            # or supernet is another question: it is asked at once)
        await self._specialize(profile, reason)

    async def _specialize(self, profile: registry_pb2.Profile, reason: str) -> None:
        """Specialize, store and make current; counted by outcome, timed when it worked."""
        started = time.perf_counter()
        ok = False
        try:
            ok = await self._specialize_once(profile, reason)
        except asyncio.CancelledError:  # stopping: neither outcome
            raise
        except Exception:
            self.metrics.specialized(reason, False, time.perf_counter() - started)
            raise
        self.metrics.specialized(reason, ok, time.perf_counter() - started)

    async def _specialize_once(self, profile: registry_pb2.Profile, reason: str) -> bool:
        name = profile.spec.name
        await asyncio.to_thread(self.ledger.mark_pending, name)
        covered = await asyncio.to_thread(self.operations.open_for, name)
        spec = await asyncio.to_thread(self._with_learnt_latencies, profile.spec)
        started = time.perf_counter()
        try:
            stream = SpecializeStream()
            async for response in self.search.Specialize(
                search_pb2.SpecializeRequest(profile=spec, options=self.settings.options),
                metadata=bearer(self.token),
                timeout=self.settings.specialize_timeout_seconds,
            ):
                stream.feed(response)
            remote = stream.finish()
        except (aio.AioRpcError, OfaFleetError) as error:
            message = (
                f"{error.code().name}: {error.details()}"
                if isinstance(error, aio.AioRpcError)
                else str(error)
            )
            if _is_infeasible(error):
                await asyncio.to_thread(
                    self.ledger.mark_infeasible,
                    name,
                    profile.revision,
                    self.supernet.known,
                    message,
                )
                await asyncio.to_thread(
                    self.operations.fail,
                    covered,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    message,
                    PROFILE_INFEASIBLE,
                )
                log.warning(
                    "profile infeasible: waiting for it or the supernet to change",
                    extra={"profile": name, "revision": profile.revision, "error": message},
                )
                return False
            attempts = await asyncio.to_thread(
                self.ledger.mark_failing,
                name,
                message,
                self.settings.backoff,
                profile.revision,
                self.supernet.known,
            )
            log.warning(
                "specialization failed",
                extra={"profile": name, "attempts": attempts, "error": message},
            )
            return False
        result = remote.result
        manifest = Manifest(
            sha256=result.model_sha256,
            size_bytes=result.model_size,
            profile_name=name,
            profile_revision=profile.revision,
            supernet_version=result.supernet_version,
            arch=result.arch_string,
            created_us=time.time_ns() // 1000,
            figures=ModelFigures(
                predicted_latency_ms=result.predicted.latency_ms,
                predicted_top1=result.predicted.top1,
                measured_top1=result.measured.top1,
                latency_source=latency_source_from_proto(result.latency_source),
                macs=result.predicted.macs,
                peak_memory_bytes=result.predicted.peak_memory_bytes,
            ).to_dict(),
        )
        signature = self.signer.sign(manifest)
        cost = cost_from_proto(result.cost) if result.HasField("cost") else ZERO
        await asyncio.to_thread(self.store.add, manifest, signature, remote.onnx_bytes, cost)
        await asyncio.to_thread(self.metrics.refresh_carbon)
        await asyncio.to_thread(self.store.set_current, name, manifest.sha256, reason)
        self.changed()  # devices watching this replica hear of it now
        self.monitor.profile_changed(name)  # staged fleets start a rollout
        await asyncio.to_thread(
            self.ledger.mark_current, name, profile.revision, result.supernet_version
        )
        await asyncio.to_thread(self.operations.succeed, covered, manifest.sha256)
        log.info(
            "specialized",
            extra={
                "profile": name,
                "revision": profile.revision,
                "sha256": manifest.sha256,
                "reason": reason,
                "seconds": round(time.perf_counter() - started, 3),
                "joules": round(cost.joules, 3),
                "co2e_grams": round(cost.co2e_grams, 6),
            },
        )
        return True

    def _with_learnt_latencies(
        self, spec: common_pb2.HardwareProfile
    ) -> common_pb2.HardwareProfile:
        """The profile as search should see it: plus what its devices measured (see
        `over_budget`), unless the profile already reports that arch itself."""
        state = self.ledger.get(spec.name)
        if state is None or not state.latency_reports:
            return spec
        merged = common_pb2.HardwareProfile()
        merged.CopyFrom(spec)
        known = {r.arch for r in spec.latency_reports}
        for arch, measured_ms in state.latency_reports:
            if arch not in known:
                merged.latency_reports.add(arch=arch, measured_ms=measured_ms)
        return merged


def _is_infeasible(error: aio.AioRpcError | OfaFleetError) -> bool:
    """Whether search found that no subnet fits the profile (asking again cannot help)."""
    if isinstance(error, OfaFleetError):
        return error.reason == PROFILE_INFEASIBLE
    details = decode_details(error.trailing_metadata())
    return details is not None and details.reason == PROFILE_INFEASIBLE
