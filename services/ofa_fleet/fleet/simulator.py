"""Many device agents in one process, to load and fault-test registry and delivery.

Each simulated device is the real device agent (`Agent.run(once=True)`: enrol, fetch,
verify, install, smoke test, report) with its own state directory
(`state_root/device-00042`), so a device shares nothing with another but the process,
and a rerun over the same `state_root` finds every identity and model of the last run
(devices already enrolled, models up to date). All devices run as tasks of one asyncio
loop; none installs a signal handler (a process has one per signal: the caller's).

Costs, thought through for 1,000 devices:

- Connections. By default all devices share one channel per service (and so one HTTP/2
  connection each): cheap, and gRPC would share the TCP connection among channels of one
  process anyway. `own_connections` gives every device channels and connections of its
  own, as separate machines would have; that is what a load balancer in front of several
  delivery replicas sees, at two file descriptors per device here and two more on the
  server. Either way each running device holds one more descriptor (its state lock), so
  the soft descriptor limit is raised as far as the hard one allows, or the simulation
  refuses to start and says to lower the concurrency.
- CPU. onnxruntime session creation and the smoke runs happen in the loop's thread pool
  (the agent's `asyncio.to_thread`), so they never block the loop for other devices; the
  pool's size bounds how many sessions exist at once, and a session is freed once its
  device has been timed. Simulated devices time their model briefly (`SIMULATION_TIMING`):
  a device's latency here measures the simulating machine, not the device.
- Memory and disk. A device in flight costs its agent's few objects and one chunk at a
  time; every device keeps its model on disk, as a real one would (N times the model size).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ofa_fleet.agent.backoff import Backoff
from ofa_fleet.agent.boot import BootSettings
from ofa_fleet.agent.connections import DEFAULT_CALL_TIMEOUT_SECONDS, Connections, Endpoints
from ofa_fleet.agent.download import DEFAULT_DOWNLOAD_TIMEOUT_SECONDS, DownloadTimeouts
from ofa_fleet.agent.install import ModelDirectory
from ofa_fleet.agent.latency_measurement import MeasureSettings
from ofa_fleet.agent.runner import Agent, AgentConfig, AgentResult
from ofa_fleet.agent.smoke import Timing
from ofa_fleet.agent.trust import load_trusted
from ofa_fleet.errors import FailedPreconditionError, IntegrityError, InvalidArgumentError
from ofa_fleet.fleet.summary import DeviceOutcome, SimulationSummary
from ofa_fleet.inference.graph_optimization import DEFAULT_GRAPH_OPTIMIZATION
from ofa_fleet.serving.tls import TlsFiles

SIMULATION_TIMING = Timing(warmup=1, runs=10, min_runs=3, max_seconds=0.25)
DESCRIPTORS_PER_DEVICE = 1  # its state lock, while it runs
DESCRIPTORS_PER_OWN_CONNECTION = 2  # one socket to registry, one to delivery
DESCRIPTOR_HEADROOM = 256  # the process's own files, the shared channels, the servers'

OutcomeHook = Callable[[DeviceOutcome], None]


@dataclass(frozen=True)
class SimulationSettings:
    registry: str  # address
    delivery: str  # address
    fleet_token: str
    devices: int
    state_root: Path  # each device gets state_root / f"device-{i:05d}"
    threads: int = 1  # onnxruntime threads per device
    concurrency: int = 0  # max boots in flight; 0 = all at once
    deadline_seconds: float = 600.0  # whole simulation; devices not done by then count as failed
    hardware_id_prefix: str = "sim"
    tls: TlsFiles | None = None
    own_connections: bool = False  # see the module docstring
    call_timeout_seconds: float = DEFAULT_CALL_TIMEOUT_SECONDS
    backoff: Backoff = field(default_factory=Backoff)
    timing: Timing = SIMULATION_TIMING
    graph_optimization: str = DEFAULT_GRAPH_OPTIMIZATION  # as the devices' profile runs it
    # Devices measure a latency table after their boot when their profile asks; None:
    # never (devices simulated here are not the hardware their profile describes, unless
    # the profile describes this machine, as the closed-loop demo's do).
    measurement: MeasureSettings | None = None
    # Shared by every device that times on this machine (their models, their tables), so
    # they take turns; see `BootSettings.timing_turns`.
    timing_turns: AbstractContextManager[Any] | None = None

    def __post_init__(self) -> None:
        if self.devices < 1:
            raise InvalidArgumentError(f"devices must be at least 1, got {self.devices}")
        if self.concurrency < 0:
            raise InvalidArgumentError(
                f"concurrency must be 0 (all at once) or positive, got {self.concurrency}"
            )
        if self.threads < 1:
            raise InvalidArgumentError(f"threads must be at least 1, got {self.threads}")
        if self.deadline_seconds <= 0:
            raise InvalidArgumentError(
                f"the deadline must be positive, got {self.deadline_seconds}"
            )

    @property
    def in_flight(self) -> int:
        """Most devices booting at once."""
        return min(self.concurrency or self.devices, self.devices)

    def state_dir(self, index: int) -> Path:
        return self.state_root / f"device-{index:05d}"

    def endpoints(self) -> Endpoints:
        return Endpoints(
            registry=self.registry,
            delivery=self.delivery,
            tls=self.tls,
            call_timeout_seconds=self.call_timeout_seconds,
            own_connection=self.own_connections,
        )

    def agent_config(self, index: int) -> AgentConfig:
        return AgentConfig(
            state_dir=self.state_dir(index),
            endpoints=self.endpoints(),
            fleet_token=self.fleet_token,
            hardware_id=f"{self.hardware_id_prefix}-{index:05d}",
            measurement=self.measurement,
            boot=BootSettings(
                threads=self.threads,
                graph_optimization=self.graph_optimization,
                timing_turns=self.timing_turns,
                backoff=self.backoff,
                # No single call outlives the whole simulation.
                download=DownloadTimeouts(
                    call_seconds=min(DEFAULT_DOWNLOAD_TIMEOUT_SECONDS, self.deadline_seconds)
                ),
                timing=self.timing,
                # The devices share this process: each meters its own smoke-test thread.
                meter_scope="thread",
            ),
        )


async def simulate_fleet(
    settings: SimulationSettings, on_outcome: OutcomeHook | None = None
) -> SimulationSummary:
    """Boot `settings.devices` devices against registry and delivery; see the module docstring.

    `on_outcome` is called in the loop as each device ends (booted or failed), for
    progress displays. A device that fails does not stop the others; one still booting
    when the deadline passes is stopped and counted as failed, with what it last waited on.
    """
    started = time.monotonic()
    ensure_descriptors(settings)
    settings.state_root.mkdir(parents=True, exist_ok=True)
    gate = asyncio.Semaphore(settings.in_flight)
    deadline = asyncio.get_running_loop().time() + settings.deadline_seconds
    shared = None if settings.own_connections else Connections(settings.endpoints())
    outcomes: list[DeviceOutcome] = []

    async def device(index: int) -> None:
        outcome = await _simulate_device(settings, index, gate, deadline, shared)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    try:
        with _problems_noted():
            async with asyncio.TaskGroup() as group:
                for index in range(settings.devices):
                    group.create_task(device(index))
    finally:
        if shared is not None:
            await shared.close()
    return SimulationSummary.of(outcomes, time.monotonic() - started)


async def follow_fleet(
    settings: SimulationSettings, until: asyncio.Event
) -> list[AgentResult | BaseException]:
    """Run every device as `ofa-fleet device run` runs without --once (boot, follow
    WatchModel, heartbeat, measure its latency table when asked) until ``until`` is set,
    then stop each as SIGTERM would; its result, or what ended it, in device order.

    Unlike `simulate_fleet`, devices run on after their boot, so a new model for their
    profile reaches them as it would a fleet in the field: this is how a loop between
    devices, registry, delivery and search is watched on one machine.
    """
    ensure_descriptors(settings)
    settings.state_root.mkdir(parents=True, exist_ok=True)
    shared = None if settings.own_connections else Connections(settings.endpoints())
    agents = [
        Agent(settings.agent_config(index), connections=shared, handle_signals=False)
        for index in range(settings.devices)
    ]
    tasks = [asyncio.create_task(agent.run()) for agent in agents]
    try:
        with _problems_noted():
            await until.wait()  # a device that fails on its own keeps its error till then
    finally:
        for agent, task in zip(agents, tasks, strict=True):
            if not task.done():
                agent.request_stop("end of simulation")
        results = await asyncio.gather(*tasks, return_exceptions=True)
        if shared is not None:
            await shared.close()
    return list(results)


async def _simulate_device(
    settings: SimulationSettings,
    index: int,
    gate: asyncio.Semaphore,
    deadline: float,
    shared: Connections | None,
) -> DeviceOutcome:
    notes = _DeviceNotes()
    _notes.set(notes)  # this task's own context: the log handler finds this device's notes
    config = settings.agent_config(index)
    outcome = DeviceOutcome(index, "", False, False, 0.0, "", 0.0, 0, "")
    try:
        async with asyncio.timeout_at(deadline):
            async with gate:
                agent = Agent(config, connections=shared, handle_signals=False)
                result = await agent.run(once=True)
    except TimeoutError:
        outcome.error = (
            f"no model within the {settings.deadline_seconds:g} s deadline"
            f" (last: {notes.last_problem or 'no answer yet'})"
        )
        return outcome
    except Exception as exc:  # one device's failure, whatever it is, is its own
        outcome.error = str(exc) or type(exc).__name__
        return outcome
    report = result.boot
    outcome.device_id = report.device_id
    outcome.ok = True
    outcome.enrolled = report.enrolled
    outcome.seconds_to_model = report.seconds_to_model
    outcome.model_sha256 = report.model_sha256
    outcome.latency_ms = report.latency_ms
    outcome.bytes_downloaded = report.bytes_downloaded
    outcome.latency_table_sent = result.measured is not None
    try:
        await asyncio.to_thread(verify_installed, config.state_dir, report.model_sha256)
    except IntegrityError as exc:
        outcome.error = f"booted, but its installed model does not check out: {exc}"
    else:
        outcome.verified = True
    return outcome


def verify_installed(state_dir: Path, sha256: str) -> None:
    """Check the model installed in `state_dir` on disk, independently of the agent's word.

    Raises `IntegrityError` unless it is model `sha256`, its bytes match its manifest and
    its manifest is signed by a key the device trusts.
    """
    installed = ModelDirectory(state_dir).installed()
    keys = load_trusted(state_dir)
    if installed is None or keys is None:
        raise IntegrityError(f"no installed model or no trusted key in {state_dir}")
    if installed.manifest.sha256 != sha256:
        raise IntegrityError(
            f"model {installed.manifest.sha256} is installed, but the boot reported {sha256}"
        )
    installed.verify(keys)


def ensure_descriptors(settings: SimulationSettings) -> None:
    """Raise the soft open-files limit to what the simulation needs, or refuse to start."""
    per_device = DESCRIPTORS_PER_DEVICE
    if settings.own_connections:
        per_device += DESCRIPTORS_PER_OWN_CONNECTION
    needed = settings.in_flight * per_device + DESCRIPTOR_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or needed <= soft:
        return
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise FailedPreconditionError(
            f"{settings.in_flight} devices in flight need about {needed} open files, but this "
            f"process may open at most {hard}: lower --concurrency, or raise the limit "
            "(ulimit -n)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@dataclass
class _DeviceNotes:
    last_problem: str = ""


# The simulated device whose task is running: agents log without naming their device,
# and a context variable is what follows each device's task through its awaits.
_notes: contextvars.ContextVar[_DeviceNotes | None] = contextvars.ContextVar(
    "simulated_device_notes", default=None
)


class _ProblemHandler(logging.Handler):
    """Keeps, per simulated device, the last thing its agent warned about."""

    def emit(self, record: logging.LogRecord) -> None:
        notes = _notes.get()
        if notes is None:
            return
        error = getattr(record, "error", "")
        call = getattr(record, "call", "")
        notes.last_problem = ": ".join(p for p in (call or record.getMessage(), error) if p)


@contextlib.contextmanager
def _problems_noted() -> Iterator[None]:
    logger = logging.getLogger("ofa_fleet.agent")
    handler = _ProblemHandler(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
