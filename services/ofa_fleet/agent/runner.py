"""The agent's life: lock the state directory, enrol once, boot, then stay alive.

`Agent.run(once=True)` ends when the model runs and has been reported (and, where the
profile asks its devices for a latency table, this device's has been measured and sent:
`latency_measurement`). Otherwise the agent then follows delivery's `WatchModel`
stream, booting again whenever it names a new model (`model_updates.ModelUpdates`),
and heartbeats beside it as often as the registry
says in its answers (`heartbeat_seconds` of the config only until it has said), until
SIGTERM or SIGINT (or `request_stop`). Either signal cancels whatever is in flight (a
backoff wait, a download: its bytes stay on disk and are resumed next time, an RPC) and
the agent ends cleanly: channels closed, lock released. A signal before the model runs
is an error (the boot did not finish); one after it is a normal end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ofa_fleet.agent.app_interface import DEFAULT_HOOK_SECONDS, AppInterface, ModelReady
from ofa_fleet.agent.backoff import retry
from ofa_fleet.agent.boot import Boot, BootReport, BootSettings, InfeasibleHook
from ofa_fleet.agent.connections import Connections, Endpoints
from ofa_fleet.agent.download import ChunkHook
from ofa_fleet.agent.identity import Identity, enrolled_identity
from ofa_fleet.agent.install import ModelDirectory
from ofa_fleet.agent.latency_measurement import LatencyMeasurer, Measured, MeasureSettings
from ofa_fleet.agent.model_updates import ModelUpdates
from ofa_fleet.agent.state_lock import state_lock
from ofa_fleet.contract.heartbeat import DEFAULT_HEARTBEAT_SECONDS, interval_from_proto
from ofa_fleet.errors import CancelledError, InvalidArgumentError
from ofa_fleet.v1 import registry_pb2

log = logging.getLogger("ofa_fleet.agent")


@dataclass(frozen=True)
class AgentConfig:
    state_dir: Path
    endpoints: Endpoints
    fleet_token: str | None = None
    hardware_id: str | None = None
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    boot: BootSettings = field(default_factory=BootSettings)
    # Run after each boot that made a model current (see `app_interface`); None: no hook.
    on_model: str | None = None
    on_model_seconds: float = DEFAULT_HOOK_SECONDS
    # Measure this device's latency table when its profile asks (`latency_measurement`);
    # None: never (where the device is not its own hardware, as in the fleet simulator).
    measurement: MeasureSettings | None = None

    def __post_init__(self) -> None:
        if self.heartbeat_seconds <= 0:
            raise InvalidArgumentError(
                f"heartbeat interval must be positive, got {self.heartbeat_seconds}"
            )
        if self.boot.threads < 1:
            raise InvalidArgumentError(f"threads must be at least 1, got {self.boot.threads}")


@dataclass(frozen=True)
class AgentResult:
    boot: BootReport  # the first boot's
    heartbeats: int = 0
    stopped_by: str | None = None
    updates: tuple[BootReport, ...] = ()  # boots for models announced while running
    measured: Measured | None = None  # the latency table sent after a --once boot, if asked


class Agent:
    """One device agent; `run` it once per state directory (the state lock sees to that).

    Many agents may share one event loop (the fleet simulator): each then passes
    `handle_signals=False`, since a process has one handler per signal, and may share
    one `Connections` (the agent uses it and leaves closing it to its owner).
    """

    def __init__(
        self,
        config: AgentConfig,
        on_chunk: ChunkHook | None = None,
        *,
        connections: Connections | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.config = config
        self.on_chunk = on_chunk
        self.connections = connections
        self.handle_signals = handle_signals
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[AgentResult] | None = None
        self._stop_reason: str | None = None
        self.heartbeats = 0
        # The registry's interval once it names one (every answer does); ours until then.
        self.heartbeat_seconds = config.heartbeat_seconds
        self.updates: list[BootReport] = []
        self.model_updates: ModelUpdates | None = None  # once the first boot is done
        self._boots: asyncio.Queue[BootReport] = asyncio.Queue()  # for the latency measurer
        self.app = AppInterface(config.state_dir, config.on_model, config.on_model_seconds)

    async def run(self, once: bool = False) -> AgentResult:
        """Boot (and with `once=False`, heartbeat until stopped); see the module docstring."""
        started = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        signals = self._handle_signals()
        try:
            with state_lock(self.config.state_dir):
                models = ModelDirectory(self.config.state_dir)
                connections = self.connections or Connections(self.config.endpoints)
                try:
                    return await self._run(connections, models, started, once)
                finally:
                    if connections is not self.connections:
                        await connections.close()
        except asyncio.CancelledError:
            if self._stop_reason is None:
                raise  # cancelled by our caller, not by a signal: theirs to handle
            self._uncancel()
            raise CancelledError(
                f"stopped by {self._stop_reason} before the model was running; what was "
                "downloaded is kept and the next start resumes from it"
            ) from None
        finally:
            for signum in signals:
                self._loop.remove_signal_handler(signum)

    def request_stop(self, reason: str = "request") -> None:
        """Stop the agent as SIGTERM would; callable from any thread."""
        if self._loop is None:
            raise RuntimeError("the agent is not running")
        self._loop.call_soon_threadsafe(self._stop, reason)

    async def _run(
        self, connections: Connections, models: ModelDirectory, started: float, once: bool
    ) -> AgentResult:
        identity, enrolled = await enrolled_identity(
            self.config.state_dir,
            connections,
            self.config.fleet_token,
            self.config.hardware_id,
            self.config.boot.backoff,
        )
        if enrolled:
            log.info("enrolled", extra={"device_id": identity.device_id, "fleet": identity.fleet})
        measurer = self._measurer(connections, identity)
        on_infeasible = None if measurer is None else self._measuring_while_infeasible(measurer)
        boot = Boot(
            connections, identity, models, self.config.boot, started, self.on_chunk, on_infeasible
        )
        report = await boot.run(enrolled)
        self._follow_interval(report.heartbeat_seconds)
        await self._publish(report, models)
        if once:
            if report.problem is not None:
                raise report.problem
            return AgentResult(report, measured=await self._measure_once(measurer, report))
        if report.problem is not None:
            log.error("running an older model", extra={"error": str(report.problem)})
        updates = ModelUpdates(
            connections,
            identity,
            self.config.boot.backoff,
            report.model_sha256,
            lambda: self._updated(
                Boot(
                    connections,
                    identity,
                    models,
                    self.config.boot,
                    time.monotonic(),
                    self.on_chunk,
                    on_infeasible,
                ).run(enrolled=False),
                models,
            ),
        )
        self.model_updates = updates
        work = [updates.follow(), self._heartbeat(connections, identity)]
        if measurer is not None:
            self._boots.put_nowait(report)
            work.append(measurer.follow(self._boots))
        try:
            await _together(*work)
        except asyncio.CancelledError:
            if self._stop_reason is None:
                raise
            self._uncancel()
            log.info("stopped", extra={"signal": self._stop_reason})
        return AgentResult(report, self.heartbeats, self._stop_reason, tuple(self.updates))

    def _measurer(self, connections: Connections, identity: Identity) -> LatencyMeasurer | None:
        if self.config.measurement is None:
            return None
        return LatencyMeasurer(
            connections, identity, self.config.state_dir, self.config.boot, self.config.measurement
        )

    async def _measure_once(
        self, measurer: LatencyMeasurer | None, report: BootReport
    ) -> Measured | None:
        """With --once, the latency table is measured (if asked) before the agent ends,
        best effort as when it runs on: the model runs whether or not this works."""
        if measurer is None:
            return None
        try:
            return await measurer.measure_if_asked(report)
        except Exception as error:  # best effort, as in `LatencyMeasurer.follow`
            log.warning(
                "latency table not measured", extra={"error": f"{type(error).__name__}: {error}"}
            )
            return None

    @staticmethod
    def _measuring_while_infeasible(measurer: LatencyMeasurer) -> InfeasibleHook:
        """While no model fits the profile by its own estimate, the device measures its
        table (if asked): what it measures may show that one does. Best effort; the
        cost goes with the boot's report, since no model runs to report it with."""

        async def measure(report: BootReport) -> None:
            try:
                await measurer.measure_if_asked(report, report_cost=False)
            except Exception as error:  # the boot goes on waiting for a model either way
                log.warning(
                    "latency table not measured",
                    extra={"error": f"{type(error).__name__}: {error}"},
                )

        return measure

    async def _updated(
        self, booting: Coroutine[Any, Any, BootReport], models: ModelDirectory
    ) -> BootReport:
        """A boot for an announced model: recorded as soon as it reported, then published.
        Telling the application takes a thread hop, and a stop arriving during it must not
        lose an update the registry has already heard of."""
        report = await booting
        self.updates.append(report)
        self._boots.put_nowait(report)  # a new model: measure if its profile asks
        self._follow_interval(report.heartbeat_seconds)
        await self._publish(report, models)
        return report

    async def _publish(self, report: BootReport, models: ModelDirectory) -> None:
        """The device's application learns of the model this boot left running."""
        if report.model_sha256:
            path = models.model_path(report.model_sha256)
            ready = ModelReady(report.model_sha256, report.arch, report.profile_name, path)
            await self.app.model_ready(ready)

    def _follow_interval(self, seconds: float | None) -> None:
        """Heartbeat as often as the registry last said (it may slow a fleet down)."""
        if seconds is not None and seconds != self.heartbeat_seconds:
            log.info("heartbeat interval", extra={"seconds": seconds})
            self.heartbeat_seconds = seconds

    async def _heartbeat(self, connections: Connections, identity: Identity) -> None:
        """Tell the registry the device is alive, every `heartbeat_seconds`, until stopped."""
        request = registry_pb2.HeartbeatRequest(name=identity.name)
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            answer = await retry(
                lambda: connections.call_registry(
                    connections.registry.Heartbeat, request, identity.device_token
                ),
                "registry Heartbeat",
                self.config.boot.backoff,
            )
            self.heartbeats += 1
            self._follow_interval(interval_from_proto(answer.heartbeat_interval))

    def _handle_signals(self) -> list[signal.Signals]:
        """SIGTERM and SIGINT stop the agent; only the main thread can receive them."""
        if not self.handle_signals or self._loop is None:
            return []
        if threading.current_thread() is not threading.main_thread():
            return []
        handled = [signal.SIGTERM, signal.SIGINT]
        for signum in handled:
            self._loop.add_signal_handler(signum, self._stop, signum.name)
        return handled

    def _stop(self, reason: str) -> None:
        if self._stop_reason is None and self._task is not None and not self._task.done():
            self._stop_reason = reason
            self._task.cancel()

    def _uncancel(self) -> None:
        if self._task is not None:
            with contextlib.suppress(AttributeError):
                self._task.uncancel()


async def _together(*work: Coroutine[Any, Any, None]) -> None:
    """Run `work` side by side until all end; the first error cancels the rest and is raised
    as itself (not in an exception group, so the command prints it as one line)."""
    tasks = [asyncio.create_task(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
