"""This device measures its own latency table when its profile asks for one.

After each boot that leaves a model running, the agent asks delivery
(`GetLatencyMeasurement`) whether its profile wants tables from its devices. If it does,
and this device has not sent one for that space and runtime setting yet
(`STATE/latency-measured.json` remembers), the agent builds the space's layers as ONNX
graphs, times them in onnxruntime with the profile's threads, execution provider and
graph optimization level
(`predictors.device_profiling`: no torch, no weights) and sends the table to the
registry (`SubmitLatencyTable`), which keeps its profile's table as the median of its
devices'. What measuring drew is reported like a boot's own profiling
(`profiling_cost`, for the carbon ledger).

Measuring is best effort: it runs beside the model (on worker threads, so heartbeats and
model updates go on), and a failure is logged and tried again after the next model,
never a reason to stop serving the model that runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from ofa_fleet.agent.backoff import retry
from ofa_fleet.agent.boot import BootReport, BootSettings
from ofa_fleet.agent.connections import Connections
from ofa_fleet.agent.identity import Identity
from ofa_fleet.carbon.convert import cost_to_proto
from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.carbon.meter import Reading
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import InvalidArgumentError, OfaFleetError, RemoteCallError
from ofa_fleet.hardware.latency_table import LatencyTable
from ofa_fleet.inference.graph_optimization import graph_optimization_from_proto
from ofa_fleet.storage.durable import write_atomic
from ofa_fleet.v1 import delivery_pb2, registry_pb2

log = logging.getLogger("ofa_fleet.agent")
MEASURED_FILE = "latency-measured.json"
MAX_SPACE_JSON_CHARS = 64 * 1024  # a space's JSON form is a few hundred characters
MAX_REMEMBERED = 64


@dataclass(frozen=True)
class MeasureSettings:
    """How long to time (see `profile_device`): the defaults take about a minute on a
    small space on one core."""

    rounds: int = 9
    runs_per_round: int = 20
    whole_models: int = 16


@dataclass(frozen=True)
class Measured:
    table: LatencyTable
    submitted: registry_pb2.SubmitLatencyTableResponse
    cost: EnergyCost


class LatencyMeasurer:
    def __init__(
        self,
        connections: Connections,
        identity: Identity,
        state_dir: Path,
        boot: BootSettings,
        settings: MeasureSettings,
    ) -> None:
        self.connections = connections
        self.identity = identity
        self.path = state_dir / MEASURED_FILE
        self.boot = boot
        self.settings = settings

    async def follow(self, boots: asyncio.Queue[BootReport]) -> None:
        """After every boot put in ``boots``, measure if asked; until cancelled."""
        while True:
            report = await boots.get()
            while not boots.empty():  # only the newest model matters
                report = boots.get_nowait()
            if not report.model_sha256:
                continue
            try:
                await self.measure_if_asked(report)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # best effort: the model that runs goes on
                log.warning(
                    "latency table not measured",
                    extra={"error": f"{type(error).__name__}: {error}"},
                )

    async def measure_if_asked(
        self, report: BootReport, report_cost: bool = True
    ) -> Measured | None:
        """Measure and send the table if delivery asks and this device has not sent it.

        What measuring drew is reported at once with the running model's status; with
        ``report_cost=False`` (no model runs yet), it is added to ``report``'s profiling
        cost instead, which the boot reports when its model runs.
        """
        token = self.identity.device_token
        request = delivery_pb2.GetLatencyMeasurementRequest(device=self.identity.name)
        try:
            answer = await retry(
                lambda: self.connections.call_delivery(
                    self.connections.delivery.GetLatencyMeasurement, request, token
                ),
                "delivery GetLatencyMeasurement",
                self.boot.backoff,
            )
        except RemoteCallError as error:
            if error.code != "FAILED_PRECONDITION":
                raise
            # A delivery that follows no search knows no space: nothing to measure.
            log.debug("no latency measurement", extra={"error": str(error)})
            return None
        if not answer.HasField("measurement"):
            return None
        wanted = answer.measurement
        key = _key(wanted)
        done = self._remembered()
        if key in done:
            return None
        space = _space(wanted)
        log.info(
            "measuring the latency table",
            extra={"profile": wanted.profile_name, "space": wanted.space_fingerprint},
        )
        spent: list[EnergyCost] = []
        table = await asyncio.to_thread(self._metered_profile, space, wanted, spent)
        text = json.dumps(table.to_dict())
        submit = registry_pb2.SubmitLatencyTableRequest(
            name=self.identity.name, latency_table_json=text
        )
        submitted = await retry(
            lambda: self.connections.call_registry(
                self.connections.registry.SubmitLatencyTable, submit, token
            ),
            "registry SubmitLatencyTable",
            self.boot.backoff,
        )
        self._remember([*done, key])
        cost = sum(spent, EnergyCost())
        if report_cost:
            await self._report_cost(report, cost)
        else:
            report.profiling_cost = cost + report.profiling_cost if report.profiling_cost else cost
        log.info(
            "latency table sent",
            extra={
                "profile": submitted.profile_name,
                "profile_revision": submitted.profile_revision,
                "devices_merged": submitted.devices_merged,
                "cpu_seconds": round(cost.cpu_seconds, 3),
            },
        )
        return Measured(table, submitted, cost)

    def _metered_profile(
        self, space: SearchSpace, wanted: delivery_pb2.LatencyMeasurement, spent: list[EnergyCost]
    ) -> LatencyTable:
        # Imported here, not at start: onnx and the profiler load only on a device that
        # is asked to measure (most never are), not into every agent's memory.
        from ofa_fleet.predictors.device_profiling import profile_device

        measured = Reading()
        try:
            with (
                self.boot.timing_turn(),
                self.boot.energy.meter(self.boot.meter_scope) as measured,
            ):
                return profile_device(
                    space,
                    wanted.in_channels,
                    wanted.num_classes,
                    threads=wanted.threads,
                    provider=wanted.execution_provider,
                    whole_models=self.settings.whole_models,
                    rounds=self.settings.rounds,
                    runs_per_round=self.settings.runs_per_round,
                    graph_optimization=_graph_optimization(wanted),
                )
        finally:
            spent.append(measured.cost)

    async def _report_cost(self, report: BootReport, cost: EnergyCost) -> None:
        """The running model's status again, with what measuring drew to add."""
        status = registry_pb2.StatusReport(
            model_sha256=report.model_sha256,
            measured_latency_ms=report.latency_ms,
            onnxruntime_version=ort.__version__,
            profiling_cost=cost_to_proto(cost),
        )
        request = registry_pb2.ReportStatusRequest(
            name=self.identity.name, report=status, request_id=str(uuid.uuid4())
        )
        await retry(
            lambda: self.connections.call_registry(
                self.connections.registry.ReportStatus, request, self.identity.device_token
            ),
            "registry ReportStatus",
            self.boot.backoff,
        )

    def _remembered(self) -> list[str]:
        return remembered_measurements(self.path.parent)

    def _remember(self, keys: list[str]) -> None:
        write_atomic(self.path, json.dumps({"measured": keys[-MAX_REMEMBERED:]}).encode())


def remembered_measurements(state_dir: Path) -> list[str]:
    """What the device in ``state_dir`` has measured and sent (space and setting keys)."""
    try:
        data = json.loads((state_dir / MEASURED_FILE).read_text())
    except (OSError, ValueError):
        return []
    keys = data.get("measured") if isinstance(data, dict) else None
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def _key(wanted: delivery_pb2.LatencyMeasurement) -> str:
    return "/".join(
        str(part)
        for part in (
            wanted.space_fingerprint,
            wanted.in_channels,
            wanted.num_classes,
            wanted.threads,
            wanted.execution_provider,
            _graph_optimization(wanted),
        )
    )


def _graph_optimization(wanted: delivery_pb2.LatencyMeasurement) -> str:
    return graph_optimization_from_proto(
        wanted.graph_optimization, "graph optimization to measure with"
    )


def _space(wanted: delivery_pb2.LatencyMeasurement) -> SearchSpace:
    """The space delivery named, refused unless it is the one its fingerprint says."""
    if len(wanted.space_json) > MAX_SPACE_JSON_CHARS:
        raise InvalidArgumentError(
            f"the search space to measure is {len(wanted.space_json):,} characters; at most "
            f"{MAX_SPACE_JSON_CHARS:,}"
        )
    if not 1 <= wanted.threads <= 1024:
        raise InvalidArgumentError(f"asked to measure with {wanted.threads} threads")
    try:
        space = SearchSpace.from_dict(json.loads(wanted.space_json))
    except (ValueError, TypeError) as error:
        raise InvalidArgumentError(
            f"the search space to measure does not parse: {error}"
        ) from error
    if space.fingerprint != wanted.space_fingerprint:
        raise OfaFleetError(
            f"the search space to measure has fingerprint {space.fingerprint}, not the "
            f"{wanted.space_fingerprint} delivery named"
        )
    return space
