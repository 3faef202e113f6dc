"""`ofa-fleet demo --closed-loop`: device kinds that differ in speed here (`device_kinds`)
measure their own latency tables, and the fleet converges on models chosen from what
the devices measured, not from the profile's word.

1. Each kind gets a profile (this machine's CPU figures, the kind's graph optimization
   level and budget, ``measure_on_devices``) and a fleet of simulated devices.
2. The devices run as daemons (`follow_fleet`): they boot on the first model (predicted
   by the analytic estimate: no table yet), then each measures its table and sends it;
   every merged table is a new profile revision, which delivery specializes again, and
   devices follow the new models as they appear. Devices measured over budget lead to
   another specialization too (`over_budget`). Devices sharing this machine time one at
   a time (`BootSettings.timing_turns`), on a core nothing else uses (`cpu_partition`).
3. The loop has settled when, for every kind, every device has sent its table, the
   profile's current model is for its newest revision (or no subnet meets what the
   devices measured: infeasible, and they keep the last model), every device reports
   that model, and nothing changed for `ClosedLoopSettings.settle_seconds`.
4. The daemons stop, and every device boots once more (`simulate_fleet`): with no
   search running, what each measures is the figure the result reports, beside what its
   first boot measured on the first model ("before").
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ofa_fleet.agent.latency_measurement import MeasureSettings, remembered_measurements
from ofa_fleet.agent.runner import AgentResult
from ofa_fleet.agent.smoke import Timing
from ofa_fleet.client.search_client import SearchClient
from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import InvalidArgumentError, RemoteCallError
from ofa_fleet.fleet.simulator import SimulationSettings, follow_fleet, simulate_fleet
from ofa_fleet.fleet.summary import SimulationSummary
from ofa_fleet.hardware.latency_table import LatencyTable
from ofa_fleet.hardware.profile_proto import budget_ms
from ofa_fleet.inference.graph_optimization import graph_optimization_from_proto
from ofa_fleet.serving.client import open_aio_channel, remote_errors
from ofa_fleet.serving.delivery_client import DeliveryClient
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.stack.cpu_partition import CpuPartition, TimingTurns, partition_cpus
from ofa_fleet.stack.demo_fleets import DemoFleet, ensure_demo_fleets, profile_files
from ofa_fleet.stack.device_kinds import BudgetCalibration, ensure_kind_profiles
from ofa_fleet.stack.local_stack import LocalStack
from ofa_fleet.v1 import delivery_pb2, registry_pb2_grpc, search_pb2_grpc

POLL_SECONDS = 1.0
STATE_NAMES = {
    delivery_pb2.SPECIALIZATION_STATE_CURRENT: "current",
    delivery_pb2.SPECIALIZATION_STATE_INFEASIBLE: "infeasible",
    delivery_pb2.SPECIALIZATION_STATE_PENDING: "specializing",
    delivery_pb2.SPECIALIZATION_STATE_FAILING: "failing",
}
LOOP_DIR = "closed-loop"
# Measuring a table takes about a quarter of `MeasureSettings`' default time here, and
# devices of this demo take turns at it.
DEMO_MEASUREMENT = MeasureSettings(rounds=5, runs_per_round=10, whole_models=8)


@dataclass(frozen=True)
class ClosedLoopSettings:
    devices_per_kind: int = 3
    deadline_seconds: float = 1800.0
    settle_seconds: float = 15.0

    def __post_init__(self) -> None:
        if not 1 <= self.devices_per_kind <= 50:
            raise InvalidArgumentError(
                f"devices per kind must be 1-50, got {self.devices_per_kind}"
            )
        if self.deadline_seconds <= 0 or self.settle_seconds < 0:
            raise InvalidArgumentError("the deadline must be positive and settling not negative")


@dataclass(frozen=True)
class ModelSeen:
    """A model a kind's profile had, as its signed manifest says."""

    sha256: str
    arch: str
    macs: int
    predicted_latency_ms: float
    latency_source: str
    profile_revision: int
    seen_after_seconds: float


@dataclass(frozen=True)
class StageResult:
    """A kind's devices at one stage: the model most of them ran, and what each measured."""

    model: ModelSeen | None
    measured_ms: tuple[float, ...]
    budget_ms: float

    @property
    def median_ms(self) -> float | None:
        return round(statistics.median(self.measured_ms), 4) if self.measured_ms else None

    @property
    def within_budget(self) -> int:
        return sum(1 for ms in self.measured_ms if ms <= self.budget_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": asdict(self.model) if self.model else None,
            "measured_ms": list(self.measured_ms),
            "median_ms": self.median_ms,
            "within_budget": self.within_budget,
        }


@dataclass(frozen=True)
class KindResult:
    kind: str
    graph_optimization: str
    budget_ms: float
    state: str  # the profile's specialization when the loop ended: current, infeasible
    calibration: BudgetCalibration | None  # None: the profile file of an earlier run
    devices: int
    table_devices: int  # devices whose tables the profile's table is the median of
    before: StageResult
    after: StageResult
    seconds_to_table_model: float | None  # loop start to a device running a table's model
    models: tuple[ModelSeen, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k not in ("before", "after")},
            "before": self.before.to_json(),
            "after": self.after.to_json(),
        }


@dataclass(frozen=True)
class ClosedLoopResult:
    kinds: list[KindResult]
    settled: bool
    seconds_to_settle: float
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cpus: CpuPartition | None = None  # None: devices shared the CPU with the servers

    @property
    def devices(self) -> int:
        return sum(k.devices for k in self.kinds)

    @property
    def within_budget(self) -> int:
        return sum(k.after.within_budget for k in self.kinds)

    def to_json(self) -> dict[str, Any]:
        return {
            "settled": self.settled,
            "seconds_to_settle": self.seconds_to_settle,
            "seconds": self.seconds,
            "devices": self.devices,
            "within_budget": self.within_budget,
            "errors": self.errors,
            "cpus": asdict(self.cpus) if self.cpus else None,
            "kinds": [k.to_json() for k in self.kinds],
        }


class ClosedLoopObserver(Protocol):
    def kinds_ready(self, fleets: list[DemoFleet]) -> None: ...

    def kind_state(self, profile: str, text: str) -> None: ...

    def stage(self, text: str) -> None: ...


@dataclass
class _KindWatch:
    """What the watcher knows of one kind, updated once a second."""

    fleet: DemoFleet
    budget_ms: float
    models: list[ModelSeen] = field(default_factory=list)  # in the order they became current
    table_revision: int | None = None  # the first revision that carried a table
    table_devices: int = 0
    seconds_to_table_model: float | None = None
    signature: tuple[Any, ...] = ()
    quiet_since: float = 0.0
    settled: bool = False
    state: str = "waiting"  # the profile's specialization, as `ofa-fleet models show` says

    def first(self, sha256: str) -> ModelSeen | None:
        """The model as first signed (the same bytes may be signed again for a newer
        revision, with figures predicted from that revision's table)."""
        return next((m for m in self.models if m.sha256 == sha256), None)

    def latest(self, sha256: str) -> ModelSeen | None:
        return next((m for m in reversed(self.models) if m.sha256 == sha256), None)


async def run_closed_loop(
    stack: LocalStack, settings: ClosedLoopSettings, observer: ClosedLoopObserver
) -> ClosedLoopResult:
    workdir = stack.settings.workdir / LOOP_DIR
    addresses = stack.addresses
    channels = [open_aio_channel(a) for a in (addresses.registry, addresses.delivery)]
    search_channel = open_aio_channel(addresses.search)
    try:
        registry = RegistryClient(
            registry_pb2_grpc.RegistryServiceStub(channels[0]),
            stack.token,
            errors=remote_errors("registry", addresses.registry),
        )
        delivery = DeliveryClient(
            channels[1],
            stack.token,
            errors=remote_errors("delivery", addresses.delivery),
        )
        search = SearchClient(
            search_pb2_grpc.SearchServiceStub(search_channel), stack.token, addresses.search, 30
        )
        supernet = await search.get_supernet()
        cpus = partition_cpus()
        turns = TimingTurns(cpus.devices if cpus else None)
        space = SearchSpace.from_dict(json.loads(supernet.space_json))
        observer.stage("timing the smallest and largest subnet of each kind, to set budgets")

        def kind_profiles() -> dict[str, BudgetCalibration | None]:
            with turns:
                return ensure_kind_profiles(
                    workdir / "profiles", space, supernet.in_channels, supernet.num_classes
                )

        calibrations = await asyncio.to_thread(kind_profiles)
        fleets = await ensure_demo_fleets(
            registry,
            profile_files(workdir / "profiles"),
            workdir / "fleet-tokens.json",
            workdir / "devices",
        )
        observer.kinds_ready(fleets)
        result = await _loop(
            stack, settings, observer, registry, delivery, fleets, calibrations, turns
        )
        return dataclasses.replace(result, cpus=cpus)
    finally:
        for channel in [*channels, search_channel]:
            await channel.close(None)


async def _loop(
    stack: LocalStack,
    settings: ClosedLoopSettings,
    observer: ClosedLoopObserver,
    registry: RegistryClient,
    delivery: DeliveryClient,
    fleets: list[DemoFleet],
    calibrations: dict[str, BudgetCalibration | None],
    turns: TimingTurns,
) -> ClosedLoopResult:
    started = time.monotonic()
    watches = {f.name: _KindWatch(f, budget_ms(f.profile.spec.constraints)) for f in fleets}
    settled = asyncio.Event()
    observer.stage("devices boot, measure their tables and follow their models")
    following = {
        f.name: asyncio.create_task(follow_fleet(_simulation(stack, f, settings, turns), settled))
        for f in fleets
    }
    watcher = asyncio.create_task(
        _watch(stack, settings, registry, delivery, watches, started, settled, observer)
    )
    try:
        done = await _until_a_server_exits(stack, watcher, settings.deadline_seconds)
    finally:
        settled.set()  # stops the daemons, settled or not
        results = {name: await task for name, task in following.items()}
    seconds_to_settle = round(time.monotonic() - started, 1)
    observer.stage("every device boots once more and measures its model on a quiet machine")
    finals = await asyncio.gather(
        *(simulate_fleet(_simulation(stack, f, settings, turns)) for f in fleets)
    )
    for watch in watches.values():  # the final boots' models, should they be new
        await _see_models(delivery, watch, started)
    kinds = [
        _kind_result(watches[f.name], calibrations.get(f.profile_name), results[f.name], final)
        for f, final in zip(fleets, finals, strict=True)
    ]
    errors: dict[str, int] = {}
    for final in finals:
        for error, count in final.errors().items():
            errors[error] = errors.get(error, 0) + count
    return ClosedLoopResult(kinds, done, seconds_to_settle, errors)


def _simulation(
    stack: LocalStack, fleet: DemoFleet, settings: ClosedLoopSettings, turns: TimingTurns
) -> SimulationSettings:
    runtime = fleet.profile.spec.runtime
    return SimulationSettings(
        registry=stack.addresses.registry,
        delivery=stack.addresses.delivery,
        fleet_token=fleet.enrolment_token,
        devices=settings.devices_per_kind,
        state_root=stack.settings.workdir / LOOP_DIR / "devices" / fleet.name,
        threads=max(1, runtime.threads),
        deadline_seconds=settings.deadline_seconds,
        hardware_id_prefix=fleet.name,
        graph_optimization=_level(fleet),
        measurement=DEMO_MEASUREMENT,
        timing_turns=turns,
        # As `ofa-fleet device run` times its model: the figure the budget is judged by.
        timing=Timing(),
    )


def _level(fleet: DemoFleet) -> str:
    """The graph optimization level the kind's profile runs (its file may be edited)."""
    runtime = fleet.profile.spec.runtime
    return graph_optimization_from_proto(runtime.graph_optimization, "runtime")


async def _watch(
    stack: LocalStack,
    settings: ClosedLoopSettings,
    registry: RegistryClient,
    delivery: DeliveryClient,
    watches: dict[str, _KindWatch],
    started: float,
    settled: asyncio.Event,
    observer: ClosedLoopObserver,
) -> None:
    """Until every kind has settled (see the module docstring), once a second."""
    while not all(w.settled for w in watches.values()):
        for watch in watches.values():
            try:
                await _update(stack, settings, registry, delivery, watch, started)
            except RemoteCallError:
                continue  # the devices retry on their own; look again next second
            observer.kind_state(watch.fleet.profile_name, _state_text(watch))
        await asyncio.sleep(POLL_SECONDS)
    settled.set()


async def _update(
    stack: LocalStack,
    settings: ClosedLoopSettings,
    registry: RegistryClient,
    delivery: DeliveryClient,
    watch: _KindWatch,
    started: float,
) -> None:
    name = watch.fleet.profile_name
    profile = await registry.get_profile(name)
    if profile.spec.latency_table_json:
        table = LatencyTable.from_dict(json.loads(profile.spec.latency_table_json))
        watch.table_devices = table.devices
        if watch.table_revision is None:
            watch.table_revision = profile.revision
    models = await _see_models(delivery, watch, started)
    devices = await registry.list_devices(watch.fleet.name)
    running = sorted(d.status.model_sha256 for d in devices if d.HasField("status"))
    if watch.seconds_to_table_model is None and _runs_a_table_model(watch, running):
        watch.seconds_to_table_model = round(time.monotonic() - started, 1)
    state_dirs = (stack.settings.workdir / LOOP_DIR / "devices" / watch.fleet.name).glob("device-*")
    measured = sum(1 for d in state_dirs if remembered_measurements(d))
    current = models.current.sha256 if models.HasField("current") else ""
    watch.state = STATE_NAMES.get(models.state, "waiting")
    ended = models.state == delivery_pb2.SPECIALIZATION_STATE_INFEASIBLE or (
        models.state == delivery_pb2.SPECIALIZATION_STATE_CURRENT
        and models.current.profile_revision == profile.revision
    )
    steady = (
        ended
        and measured >= settings.devices_per_kind
        and len(running) >= settings.devices_per_kind
        and all(sha == current for sha in running)
    )
    signature = (profile.revision, current, tuple(running), measured, steady)
    now = time.monotonic()
    if signature != watch.signature:
        watch.signature, watch.quiet_since = signature, now
    watch.settled = steady and now - watch.quiet_since >= settings.settle_seconds


def _runs_a_table_model(watch: _KindWatch, running: list[str]) -> bool:
    """Whether a device runs a model made for a revision that carried a table."""
    if watch.table_revision is None:
        return False
    revisions = [seen.profile_revision for sha in running if (seen := watch.latest(sha))]
    return any(revision >= watch.table_revision for revision in revisions)


async def _see_models(
    delivery: DeliveryClient, watch: _KindWatch, started: float
) -> delivery_pb2.GetProfileModelsResponse:
    """The profile's models as delivery says now; a new current one is remembered."""
    models = await delivery.profile_models(watch.fleet.profile_name, history_limit=1)
    current = models.current
    known = watch.latest(current.sha256)
    if models.HasField("current") and (
        known is None or known.profile_revision != current.profile_revision
    ):
        manifest = Manifest.from_bytes(current.canonical_manifest)
        figures = manifest.model_figures()
        watch.models.append(
            ModelSeen(
                sha256=manifest.sha256,
                arch=manifest.arch,
                macs=figures.macs or 0,
                predicted_latency_ms=round(figures.predicted_latency_ms or 0.0, 4),
                latency_source=figures.latency_source,
                profile_revision=manifest.profile_revision,
                seen_after_seconds=round(time.monotonic() - started, 1),
            )
        )
    return models


def _state_text(watch: _KindWatch) -> str:
    revision, current, running, measured, _ = watch.signature or (0, "", (), 0, False)
    seen = watch.latest(current)
    model = f"{seen.latency_source} model of rev {seen.profile_revision}" if seen else "no model"
    on_current = sum(1 for sha in running if sha == current)
    text = f"rev {revision} · tables sent {measured} · {model} · on it {on_current}"
    text += f" · {watch.state}"
    return text + (" · settled" if watch.settled else "")


def _kind_result(
    watch: _KindWatch,
    calibration: BudgetCalibration | None,
    followed: list[AgentResult | BaseException],
    final: SimulationSummary,
) -> KindResult:
    first_boots = [r.boot for r in followed if isinstance(r, AgentResult)]
    before_sha = _most_common([b.model_sha256 for b in first_boots])
    after_sha = _most_common([o.model_sha256 for o in final.outcomes if o.ok])
    return KindResult(
        kind=watch.fleet.profile_name,
        graph_optimization=_level(watch.fleet),
        budget_ms=watch.budget_ms,
        state=watch.state,
        calibration=calibration,
        devices=len(final.outcomes),
        table_devices=watch.table_devices,
        before=StageResult(
            watch.first(before_sha),
            tuple(round(b.latency_ms, 4) for b in first_boots if b.model_sha256 == before_sha),
            watch.budget_ms,
        ),
        after=StageResult(
            watch.latest(after_sha),
            tuple(round(o.latency_ms, 4) for o in final.outcomes if o.ok),
            watch.budget_ms,
        ),
        seconds_to_table_model=watch.seconds_to_table_model,
        models=tuple(watch.models),
    )


def _most_common(values: list[str]) -> str:
    return max(set(values), key=values.count) if values else ""


async def _until_a_server_exits(
    stack: LocalStack, watcher: asyncio.Task[None], deadline_seconds: float
) -> bool:
    """True when ``watcher`` ends (settled), False at the deadline; a server's exit raises."""
    give_up = time.monotonic() + deadline_seconds
    try:
        while time.monotonic() < give_up:
            done, _ = await asyncio.wait({watcher}, timeout=POLL_SECONDS)
            if done:
                watcher.result()
                return True
            exited = stack.exited()
            if exited is not None:
                raise exited
        return False
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
