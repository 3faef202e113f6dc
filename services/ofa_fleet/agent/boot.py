"""One boot: from an enrolled identity to a model that runs here and has been reported.

1. `GetSigningKey`: the key is pinned on first use; after that it must be one the device
   trusts, or be endorsed by one (a rotation, see `trust`).
2. The installed model (if any) is checked against the trusted keys and its sha256: a
   model damaged on disk is not offered as `have_sha256`, so delivery sends it again.
3. `GetModelManifest` with what the device has; up to date, or the model's bytes streamed
   by `ReadModel` (resuming what it was downloading), verified and installed
   (`download.ModelFetcher`).
4. The model is loaded in onnxruntime, smoke-tested and timed (`smoke.smoke_test`).
5. `ReportStatus`: the model's sha256, its measured latency, errors if any, and what the
   profiling of step 4 drew (`profiling_cost`, for the fleet's carbon ledger).

What goes wrong is handled so that a device always runs the best model it can vouch for:
a refused model (signature, key, bytes) leaves the previous one running; a model that
verifies but does not run is rolled back to the previous one. Both are reported to the
registry as errors, and the boot ends with `problem` set. Only when no model can run
at all does the boot raise (after reporting that too). Transient failures are retried
with backoff inside each step; nothing here gives up on a service that is merely down.

Step 4 is metered over the whole process (onnxruntime computes on threads of its own):
every load, smoke inference and timing run of this boot, a rolled-back model's included,
is charged to the device's profiling, converted by the device's own power model and grid.
Where many simulated devices share one process (`ofa_fleet.fleet`), each meters only the
thread its smoke test runs on (``meter_scope="thread"``): the process's CPU time would
charge every device with the others' work. That is exact for one onnxruntime thread (it
computes on the caller's) and a lower bound for more.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import onnxruntime as ort

from ofa_fleet.agent.backoff import Backoff, retry
from ofa_fleet.agent.connections import Connections
from ofa_fleet.agent.download import ChunkHook, DownloadTimeouts, ModelFetcher, Transfer
from ofa_fleet.agent.identity import Identity, identity_path
from ofa_fleet.agent.install import ModelDirectory
from ofa_fleet.agent.smoke import SmokeResult, Timing, smoke_test
from ofa_fleet.agent.state import InstalledModel
from ofa_fleet.agent.trust import Endorsement, TrustedKeys, load_trusted, trust
from ofa_fleet.carbon.convert import cost_to_proto
from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.carbon.meter import EnergyModel, Reading
from ofa_fleet.contract.heartbeat import interval_from_proto
from ofa_fleet.errors import (
    FailedPreconditionError,
    IntegrityError,
    OfaFleetError,
    RemoteCallError,
)
from ofa_fleet.inference.graph_optimization import DEFAULT_GRAPH_OPTIMIZATION
from ofa_fleet.v1 import delivery_pb2, registry_pb2

log = logging.getLogger("ofa_fleet.agent")
MAX_ERROR_CHARS = 1024  # what the registry keeps of one status error


@dataclass(frozen=True)
class BootSettings:
    threads: int = 1
    # onnxruntime's graph optimizations for the model (`inference.graph_optimization`).
    graph_optimization: str = DEFAULT_GRAPH_OPTIMIZATION
    backoff: Backoff = field(default_factory=Backoff)
    download: DownloadTimeouts = field(default_factory=DownloadTimeouts)
    timing: Timing = field(default_factory=Timing)
    # This device's power model and grid (OFA_FLEET_CPU_* and OFA_FLEET_GRID_* variables).
    energy: EnergyModel = field(default_factory=EnergyModel.from_environment)
    # "thread" where several agents share this process (the fleet simulator).
    meter_scope: Literal["process", "thread"] = "process"
    # Where no model fits the profile: watch for one (a daemon), or fail at once (--once).
    wait_while_infeasible: bool = True
    # Held while this device times anything (its model, a latency table), where devices
    # share one machine (the fleet simulator): they take turns, as devices with a CPU each
    # would not slow each other down. None on a real device.
    timing_turns: AbstractContextManager[Any] | None = None

    def timing_turn(self) -> AbstractContextManager[Any]:
        return self.timing_turns if self.timing_turns is not None else contextlib.nullcontext()


InfeasibleHook = Callable[["BootReport"], Awaitable[None]]


@dataclass
class BootReport:
    """What a boot did, for the command's output and the tests."""

    device_id: str
    fleet: str
    enrolled: bool
    model_sha256: str = ""
    arch: str = ""
    profile_name: str = ""
    up_to_date: bool = False
    bytes_downloaded: int = 0
    resumed_from: int = 0
    latency_ms: float = 0.0
    latency_runs: int = 0
    threads: int = 1
    input_shape: tuple[int, ...] = ()
    seconds_to_model: float = 0.0
    seconds_total: float = 0.0
    errors: list[str] = field(default_factory=list)
    # What loading, smoke-testing and timing drew; None when nothing was profiled.
    profiling_cost: EnergyCost | None = None
    # Set when the device runs an older model than delivery offered (refused, rolled back).
    problem: OfaFleetError | None = None
    # The heartbeat interval the registry named in its answer to the report; None if none.
    heartbeat_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "fleet": self.fleet,
            "enrolled": self.enrolled,
            "model_sha256": self.model_sha256,
            "arch": self.arch,
            "profile": self.profile_name,
            "up_to_date": self.up_to_date,
            "bytes_downloaded": self.bytes_downloaded,
            "resumed_from": self.resumed_from,
            "latency_ms": round(self.latency_ms, 4),
            "latency_runs": self.latency_runs,
            "threads": self.threads,
            "input_shape": list(self.input_shape),
            "onnxruntime_version": ort.__version__,
            "seconds_to_model": round(self.seconds_to_model, 3),
            "seconds_total": round(self.seconds_total, 3),
            "errors": list(self.errors),
            "profiling_cost": None
            if self.profiling_cost is None
            else self.profiling_cost.to_dict(),
        }


class Boot:
    """The boot sequence of one device; see the module docstring."""

    def __init__(
        self,
        connections: Connections,
        identity: Identity,
        models: ModelDirectory,
        settings: BootSettings,
        started: float,
        on_chunk: ChunkHook | None = None,
        on_infeasible: InfeasibleHook | None = None,
    ) -> None:
        self.connections = connections
        self.identity = identity
        self.models = models
        self.settings = settings
        self.started = started
        self.on_chunk = on_chunk
        # Run while no model fits the profile (see `ModelFetcher`), with this boot's report.
        self.on_infeasible = on_infeasible

    @property
    def state_dir(self) -> Path:
        return self.models.state_dir

    async def run(self, enrolled: bool) -> BootReport:
        report = BootReport(
            self.identity.device_id,
            self.identity.fleet,
            enrolled,
            threads=self.settings.threads,
        )
        trusted = load_trusted(self.state_dir)
        have = self._installed()
        if trusted is not None:  # checked first, so a refusal below falls back on it
            have = await self._verified(have, trusted)
        try:
            keys = await self._signing_keys()
            if trusted is None:
                have = await self._verified(have, keys)
            model = await self._fetch(have, keys, report)
        except IntegrityError as exc:
            model = await self._refused(exc, have, report)
        smoke, model = await self._smoke(model, report)
        report.model_sha256 = model.manifest.sha256
        report.arch = model.manifest.arch
        report.profile_name = model.manifest.profile_name
        report.latency_ms, report.latency_runs = smoke.latency_ms, smoke.runs
        report.input_shape = smoke.input_shape
        report.seconds_to_model = smoke.ready_at - self.started
        log.info(
            "model running",
            extra={
                "device_id": self.identity.device_id,
                "model_sha256": model.manifest.sha256,
                "latency_ms": round(smoke.latency_ms, 4),
                "seconds_to_model": round(report.seconds_to_model, 3),
            },
        )
        answer = await self._report(
            model.manifest.sha256,
            smoke.latency_ms,
            report.errors,
            report.seconds_to_model,
            report.profiling_cost,
        )
        report.heartbeat_seconds = interval_from_proto(answer.heartbeat_interval)
        report.seconds_total = time.monotonic() - self.started
        return report

    def _installed(self) -> InstalledModel | None:
        try:
            return self.models.installed()
        except IntegrityError as exc:
            raise FailedPreconditionError(
                f"{exc}; remove it (and {self.models.models_dir}) to download the model again"
            ) from None

    async def _signing_keys(self) -> TrustedKeys:
        try:
            served = await retry(
                lambda: self.connections.call_delivery(
                    self.connections.delivery.GetSigningKey,
                    delivery_pb2.GetSigningKeyRequest(),
                    self.identity.device_token,
                ),
                "delivery GetSigningKey",
                self.settings.backoff,
            )
        except RemoteCallError as error:
            if error.code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
                raise RemoteCallError(
                    f"{error}: the registry no longer accepts device "
                    f"{self.identity.device_id}; if it was deleted, remove "
                    f"{identity_path(self.state_dir)} to enrol again",
                    error.code,
                ) from None
            raise
        endorsements = [Endorsement(e.signer_key_id, e.signature) for e in served.endorsements]
        return trust(self.state_dir, served.public_key_pem, served.key_id, endorsements)

    async def _verified(
        self, have: InstalledModel | None, keys: TrustedKeys
    ) -> InstalledModel | None:
        """`have` if its signature and bytes still check out, else None (fetch it again)."""
        if have is None:
            return None
        try:
            await asyncio.to_thread(have.verify, keys)
        except IntegrityError as exc:
            log.warning("installed model fails its check", extra={"error": str(exc)})
            return None
        return have

    async def _fetch(
        self, have: InstalledModel | None, keys: TrustedKeys, report: BootReport
    ) -> InstalledModel:
        fetcher = ModelFetcher(
            self.connections,
            self.identity,
            self.models,
            keys,
            self.settings.download,
            self.on_chunk,
            self.settings.wait_while_infeasible,
            None if self.on_infeasible is None else functools.partial(self.on_infeasible, report),
        )
        transfer = Transfer()
        try:
            fetched = await retry(
                lambda: fetcher.fetch(have, transfer),
                "delivery GetModelManifest+ReadModel",
                self.settings.backoff,
            )
        finally:
            report.bytes_downloaded = transfer.bytes_downloaded
            report.resumed_from = transfer.resumed_from
        report.up_to_date = fetched.up_to_date
        return fetched.model

    async def _refused(
        self, error: IntegrityError, have: InstalledModel | None, report: BootReport
    ) -> InstalledModel:
        """Keep running what is installed (verified above) after a refusal."""
        log.error("model refused", extra={"error": str(error)})
        report.errors.append(str(error))
        if have is None:
            await self._report("", 0.0, report.errors)
            raise IntegrityError(f"{error}; no model to run") from None
        report.problem = IntegrityError(f"{error}; still running model {have.manifest.sha256}")
        return have

    async def _smoke(
        self, model: InstalledModel, report: BootReport
    ) -> tuple[SmokeResult, InstalledModel]:
        """Smoke-test `model`; if it fails, roll back to the previous model and test that."""
        try:
            return await self._smoke_test(model, report), model
        except FailedPreconditionError as exc:
            report.errors.append(str(exc))
            log.error("model fails to run", extra={"error": str(exc)})
            previous = await asyncio.to_thread(self._rollback)
            if previous is None:
                await self._report("", 0.0, report.errors, profiling_cost=report.profiling_cost)
                raise
            report.problem = FailedPreconditionError(
                f"{exc}; rolled back to model {previous.manifest.sha256}"
            )
            return await self._smoke_test(previous, report), previous

    def _rollback(self) -> InstalledModel | None:
        try:
            return self.models.rollback()
        except IntegrityError:
            return None

    async def _smoke_test(self, model: InstalledModel, report: BootReport) -> SmokeResult:
        """`smoke_test` metered; what it drew is added to the report, failed or not."""
        spent: list[EnergyCost] = []
        try:
            return await asyncio.to_thread(self._metered_smoke_test, model, spent)
        finally:
            for cost in spent:
                report.profiling_cost = (
                    cost if report.profiling_cost is None else report.profiling_cost + cost
                )

    def _metered_smoke_test(self, model: InstalledModel, spent: list[EnergyCost]) -> SmokeResult:
        """On the worker thread, so that a thread-scoped meter sees the work itself."""
        measured = Reading()
        try:
            with (
                self.settings.timing_turn(),
                self.settings.energy.meter(self.settings.meter_scope) as measured,
            ):
                return smoke_test(
                    model.path,
                    self.settings.threads,
                    self.settings.timing,
                    self.settings.graph_optimization,
                )
        finally:
            spent.append(measured.cost)

    async def _report(
        self,
        sha256: str,
        latency_ms: float,
        errors: list[str],
        seconds_to_model: float = 0.0,
        profiling_cost: EnergyCost | None = None,
    ) -> registry_pb2.ReportStatusResponse:
        status = registry_pb2.StatusReport(
            model_sha256=sha256,
            measured_latency_ms=latency_ms,
            boot_to_model_seconds=seconds_to_model,
            onnxruntime_version=ort.__version__,
            errors=[_status_error(e) for e in errors[-16:]],
        )
        if profiling_cost is not None:
            status.profiling_cost.CopyFrom(cost_to_proto(profiling_cost))
        request = registry_pb2.ReportStatusRequest(
            name=self.identity.name,
            report=status,
            request_id=str(uuid.uuid4()),  # the same for every retry: its cost counted once
        )
        return await retry(
            lambda: self.connections.call_registry(
                self.connections.registry.ReportStatus, request, self.identity.device_token
            ),
            "registry ReportStatus",
            self.settings.backoff,
        )


def _status_error(text: str) -> str:
    printable = "".join(c if c.isprintable() else " " for c in text)
    return printable[:MAX_ERROR_CHARS]
