"""Hardware profiles as `ofa_fleet.v1.HardwareProfile` messages, both ways.

Every service that receives a profile (registry, search) reads it here, into the same
dictionary a profile file holds, so one validator (`HardwareProfile.from_dict`) judges a
profile however it arrived and its errors name the message field at fault.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.duration_pb2 import Duration

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.latency_table import LatencyTable
from ofa_fleet.hardware.profile import MAX_BUDGET_MS, HardwareProfile
from ofa_fleet.inference.graph_optimization import (
    graph_optimization_from_proto,
    graph_optimization_to_proto,
)
from ofa_fleet.v1 import common_pb2

# A latency table of the largest space is a few hundred KB of JSON.
MAX_LATENCY_TABLE_CHARS = 1024 * 1024


def budget_ms(constraints: common_pb2.Constraints) -> float:
    """The latency budget in milliseconds, the unit of profile files and of the code."""
    return constraints.latency_budget.ToNanoseconds() / 1e6


def _checked_budget_ms(message: common_pb2.HardwareProfile) -> float:
    """The budget, refused here when it is no valid, positive Duration of at most an
    hour: the file's validator would name `latency_budget_ms`, not the wire's field."""
    duration = message.constraints.latency_budget
    where = f"profile {message.name!r}: constraints.latency_budget"
    seconds, nanos = duration.seconds, duration.nanos
    if abs(nanos) >= 1_000_000_000 or (seconds > 0 > nanos) or (seconds < 0 < nanos):
        raise InvalidArgumentError(
            f"{where} is no valid Duration (seconds {seconds}, nanos {nanos}: nanos must "
            "be under a second and of the same sign)",
            field="constraints.latency_budget",
        )
    milliseconds = budget_ms(message.constraints)
    if not 0 < milliseconds <= MAX_BUDGET_MS:
        raise InvalidArgumentError(
            f"{where} must be positive and at most {MAX_BUDGET_MS / 3_600_000:g} hour, "
            f"got {milliseconds:g} ms",
            field="constraints.latency_budget",
        )
    return milliseconds


def milliseconds_to_proto(milliseconds: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(round(milliseconds * 1e6))
    return duration


def profile_from_proto(message: common_pb2.HardwareProfile, field: str) -> HardwareProfile:
    if not message.ByteSize():
        raise InvalidArgumentError(f"{field} is required")
    data: dict[str, Any] = {
        "name": message.name,
        "cpu": {
            "architecture": message.cpu.architecture,
            "cores": message.cpu.cores,
            "clock_ghz": message.cpu.clock_ghz,
        },
        "ram_bytes": message.ram_bytes,
        "storage_bytes": message.storage_bytes,
        "runtime": {
            "engine": message.runtime.engine or "onnxruntime",
            "execution_provider": message.runtime.execution_provider or "CPUExecutionProvider",
            "threads": message.runtime.threads or 1,
            "graph_optimization": graph_optimization_from_proto(
                message.runtime.graph_optimization, f"{field}.runtime.graph_optimization"
            ),
        },
        "constraints": {
            "latency_budget_ms": _checked_budget_ms(message),
            "batch_size": message.constraints.batch_size or 1,
            "max_model_bytes": message.constraints.max_model_bytes,
            "max_peak_memory_bytes": message.constraints.max_peak_memory_bytes,
        },
        "latency_reports": [
            {"arch": r.arch, "measured_ms": r.measured_ms} for r in message.latency_reports
        ],
    }
    for optional in ("peak_gflops", "memory_bandwidth_gbps"):
        if message.cpu.HasField(optional):
            data["cpu"][optional] = getattr(message.cpu, optional)
    for optional in ("resolution", "min_top1"):
        if message.constraints.HasField(optional):
            data["constraints"][optional] = getattr(message.constraints, optional)
    if message.latency_table_json:
        table = latency_table_from_json(message.latency_table_json, f"{field}.latency_table_json")
        data["latency_table"] = table.to_dict()
    if message.measure_on_devices:
        data["measure_on_devices"] = True
    return HardwareProfile.from_dict(data)


def latency_table_from_json(text: str, field: str) -> LatencyTable:
    """A latency table's JSON document as it crosses the wire: bounded, then validated."""
    if len(text) > MAX_LATENCY_TABLE_CHARS:
        raise InvalidArgumentError(
            f"{field} is {len(text):,} characters; at most {MAX_LATENCY_TABLE_CHARS:,} "
            "(a whole space's table is far smaller)"
        )
    try:
        return LatencyTable.from_dict(json.loads(text))
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(
            f"{field} is not JSON ({exc.msg} at character {exc.pos}); "
            "send the file `ofa-fleet profile-device` wrote, unchanged"
        ) from exc
    except RecursionError as exc:
        raise InvalidArgumentError(f"{field} is nested too deeply") from exc
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{field}: {exc}") from exc


def profile_to_proto(spec: HardwareProfile) -> common_pb2.HardwareProfile:
    message = common_pb2.HardwareProfile(
        name=spec.name,
        cpu=common_pb2.CpuSpec(
            architecture=spec.cpu.architecture,
            cores=spec.cpu.cores,
            clock_ghz=spec.cpu.clock_ghz,
            peak_gflops=spec.cpu.peak_gflops,
            memory_bandwidth_gbps=spec.cpu.memory_bandwidth_gbps,
        ),
        ram_bytes=spec.ram_bytes,
        storage_bytes=spec.storage_bytes,
        runtime=common_pb2.RuntimeSpec(
            engine=spec.runtime.engine,
            execution_provider=spec.runtime.execution_provider,
            threads=spec.runtime.threads,
            graph_optimization=graph_optimization_to_proto(spec.runtime.graph_optimization),
        ),
        constraints=common_pb2.Constraints(
            latency_budget=milliseconds_to_proto(spec.constraints.latency_budget_ms),
            batch_size=spec.constraints.batch_size,
            resolution=spec.constraints.resolution,
            max_model_bytes=spec.constraints.max_model_bytes,
            max_peak_memory_bytes=spec.constraints.max_peak_memory_bytes,
            min_top1=spec.constraints.min_top1,
        ),
        latency_reports=[
            common_pb2.LatencyReport(arch=r.arch, measured_ms=r.measured_ms)
            for r in spec.latency_reports
        ],
    )
    if spec.latency_table is not None:
        message.latency_table_json = json.dumps(spec.latency_table.to_dict())
    message.measure_on_devices = spec.measure_on_devices
    return message
