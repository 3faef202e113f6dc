"""`HardwareProfile`: one kind of device, as the registry stores it and search reads it.

A profile says what the hardware is (CPU, memory, storage, runtime) and what its model
must meet (latency budget, model size, peak memory, optionally accuracy). It may carry a
latency table the device measured for itself, and latency reports from devices in the
field, which calibrate the predictor. Every field is checked here, at the boundary, so a
bad profile fails with the field's name instead of producing a model nobody can run.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.latency_table import LatencyTable
from ofa_fleet.hardware.units import parse_bytes
from ofa_fleet.inference.graph_optimization import (
    DEFAULT_GRAPH_OPTIMIZATION,
    check_graph_optimization,
)

T = TypeVar("T")

ARCHITECTURES = ("x86_64", "aarch64", "armv7", "riscv64")
# Ceilings far above any real device: they keep absurd figures out of search and storage.
MAX_CORES = 1024
MAX_CLOCK_GHZ = 100.0
MAX_GFLOPS = 1e9
MAX_GBPS = 1e6
MAX_BYTES = 2**50  # a petabyte
MAX_BUDGET_MS = 3_600_000.0  # an hour per inference
MAX_BATCH = 4096
MIN_RESOLUTION, MAX_RESOLUTION = 16, 2048
MAX_LATENCY_REPORTS = 256
ARCH_PATTERN = re.compile(r"[A-Za-z0-9_=,|\-]{1,512}")
ENGINES = ("onnxruntime",)
EXECUTION_PROVIDERS = (
    "CPUExecutionProvider",
    "XnnpackExecutionProvider",
    "ACLExecutionProvider",
    "ArmNNExecutionProvider",
    "NnapiExecutionProvider",
    "CoreMLExecutionProvider",
    "OpenVINOExecutionProvider",
)


@dataclass(frozen=True)
class CpuSpec:
    """The processor the model runs on.

    Attributes:
        architecture: instruction set, one of `ARCHITECTURES`.
        cores: physical cores on the device.
        clock_ghz: sustained clock.
        peak_gflops: peak fp32 GFLOP/s of the cores the model uses, when known
            (datasheet or a measurement); otherwise derived from the clock.
        memory_bandwidth_gbps: sustained memory bandwidth in GB/s, when known.
    """

    architecture: str
    cores: int
    clock_ghz: float
    peak_gflops: float | None = None
    memory_bandwidth_gbps: float | None = None

    def validate(self, where: str) -> None:
        if self.architecture not in ARCHITECTURES:
            raise InvalidArgumentError(
                f"{where}.architecture must be one of {list(ARCHITECTURES)}, "
                f"got {self.architecture!r}"
            )
        _positive(self.cores, f"{where}.cores", MAX_CORES)
        _positive(self.clock_ghz, f"{where}.clock_ghz", MAX_CLOCK_GHZ)
        if self.peak_gflops is not None:
            _positive(self.peak_gflops, f"{where}.peak_gflops", MAX_GFLOPS)
        if self.memory_bandwidth_gbps is not None:
            _positive(self.memory_bandwidth_gbps, f"{where}.memory_bandwidth_gbps", MAX_GBPS)


@dataclass(frozen=True)
class RuntimeSpec:
    """How the device runs models: the engine, its execution provider, threads and graph
    optimization level (the same model is several times slower without onnxruntime's
    fusions and layout changes, so a device that loads models with fewer is, for
    latency, another kind of device)."""

    engine: str = "onnxruntime"
    execution_provider: str = "CPUExecutionProvider"
    threads: int = 1
    graph_optimization: str = DEFAULT_GRAPH_OPTIMIZATION

    def validate(self, where: str, cores: int) -> None:
        if self.engine not in ENGINES:
            raise InvalidArgumentError(
                f"{where}.engine must be one of {list(ENGINES)}, got {self.engine!r}"
            )
        if self.execution_provider not in EXECUTION_PROVIDERS:
            raise InvalidArgumentError(
                f"{where}.execution_provider {self.execution_provider!r} is not a known "
                f"onnxruntime execution provider; known: {list(EXECUTION_PROVIDERS)}"
            )
        _positive(self.threads, f"{where}.threads")
        check_graph_optimization(self.graph_optimization, f"{where}.graph_optimization")
        if self.threads > cores:
            raise InvalidArgumentError(
                f"{where}.threads is {self.threads} but the CPU has {cores} cores"
            )


@dataclass(frozen=True)
class Constraints:
    """What a model must meet to be shipped to this kind of device.

    Attributes:
        latency_budget_ms: most milliseconds one inference may take.
        batch_size: batch the budget is stated at.
        resolution: input resolution the device feeds, when fixed (a camera); ``None``
            lets search pick the resolution.
        max_model_bytes: largest model file the device accepts.
        max_peak_memory_bytes: most activation memory an inference may use.
        min_top1: least top-1 accuracy (0-1) worth shipping; ``None``: no floor.
    """

    latency_budget_ms: float
    max_model_bytes: int
    max_peak_memory_bytes: int
    batch_size: int = 1
    resolution: int | None = None
    min_top1: float | None = None

    def validate(self, where: str) -> None:
        _positive(self.latency_budget_ms, f"{where}.latency_budget_ms", MAX_BUDGET_MS)
        _positive(self.batch_size, f"{where}.batch_size", MAX_BATCH)
        _positive(self.max_model_bytes, f"{where}.max_model_bytes", MAX_BYTES)
        _positive(self.max_peak_memory_bytes, f"{where}.max_peak_memory_bytes", MAX_BYTES)
        if self.resolution is not None:
            _positive(self.resolution, f"{where}.resolution", MAX_RESOLUTION)
            if self.resolution < MIN_RESOLUTION:
                raise InvalidArgumentError(
                    f"{where}.resolution must be {MIN_RESOLUTION}-{MAX_RESOLUTION} pixels, "
                    f"got {self.resolution}"
                )
        if self.min_top1 is not None and not 0.0 <= self.min_top1 <= 1.0:
            raise InvalidArgumentError(f"{where}.min_top1 must be within 0..1, got {self.min_top1}")


@dataclass(frozen=True)
class LatencyReport:
    """A whole-model latency a device measured for a model it runs."""

    arch: str
    measured_ms: float

    def validate(self, where: str) -> None:
        if not isinstance(self.arch, str) or not ARCH_PATTERN.fullmatch(self.arch):
            raise InvalidArgumentError(
                f"{where}.arch must be an arch string (up to 512 letters, digits and _=,|-)"
            )
        _positive(self.measured_ms, f"{where}.measured_ms", MAX_BUDGET_MS)


@dataclass(frozen=True)
class HardwareProfile:
    """One kind of device. See the module docstring."""

    name: str
    cpu: CpuSpec
    ram_bytes: int
    storage_bytes: int
    constraints: Constraints
    runtime: RuntimeSpec = field(default_factory=RuntimeSpec)
    latency_table: LatencyTable | None = None
    latency_reports: tuple[LatencyReport, ...] = ()
    # Devices measure `latency_table` themselves (see RegistryService.SubmitLatencyTable).
    measure_on_devices: bool = False

    def __post_init__(self) -> None:
        where = f"profile {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidArgumentError("profile name must be a non-empty string")
        self.cpu.validate(f"{where}: cpu")
        self.runtime.validate(f"{where}: runtime", self.cpu.cores)
        self.constraints.validate(f"{where}: constraints")
        _positive(self.ram_bytes, f"{where}: ram_bytes", MAX_BYTES)
        _positive(self.storage_bytes, f"{where}: storage_bytes", MAX_BYTES)
        if self.constraints.max_model_bytes > self.storage_bytes:
            raise InvalidArgumentError(
                f"{where}: constraints.max_model_bytes ({self.constraints.max_model_bytes}) "
                f"exceeds storage_bytes ({self.storage_bytes})"
            )
        if self.constraints.max_peak_memory_bytes > self.ram_bytes:
            raise InvalidArgumentError(
                f"{where}: constraints.max_peak_memory_bytes "
                f"({self.constraints.max_peak_memory_bytes}) exceeds ram_bytes ({self.ram_bytes})"
            )
        if len(self.latency_reports) > MAX_LATENCY_REPORTS:
            raise InvalidArgumentError(
                f"{where}: latency_reports holds {len(self.latency_reports)} reports; at most "
                f"{MAX_LATENCY_REPORTS} (keep the most recent)"
            )
        for index, report in enumerate(self.latency_reports):
            report.validate(f"{where}: latency_reports[{index}]")

    @property
    def threads(self) -> int:
        return self.runtime.threads

    def to_dict(self) -> dict[str, Any]:
        """The stored shape: what `from_dict` reads and what profile files contain."""
        data: dict[str, Any] = {
            "name": self.name,
            "cpu": _drop_none(vars(self.cpu)),
            "ram_bytes": self.ram_bytes,
            "storage_bytes": self.storage_bytes,
            "runtime": dict(vars(self.runtime)),
            "constraints": _drop_none(vars(self.constraints)),
        }
        if self.latency_table is not None:
            data["latency_table"] = self.latency_table.to_dict()
        if self.latency_reports:
            data["latency_reports"] = [dict(vars(r)) for r in self.latency_reports]
        if self.measure_on_devices:
            data["measure_on_devices"] = True
        return data

    @classmethod
    def from_dict(cls, data: Any, name_hint: str = "profile") -> HardwareProfile:
        """Build and validate a profile; errors name the field at fault, every one of
        them at once (one error per section), so a file is fixed in one pass."""
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"{name_hint}: a profile must be a mapping")
        where = f"profile {data.get('name', name_hint)!r}"
        problems = _Problems(where)
        with problems.section():
            _only(data, TOP_LEVEL_FIELDS, "")
        missing = [f for f in REQUIRED_FIELDS if f not in data]
        if missing:
            problems.add(_missing(missing))

        def section(key: str, build: Callable[[], T]) -> T | None:
            if key not in data and key in REQUIRED_FIELDS:
                return None  # reported above
            with problems.section(key):
                return build()
            return None

        cpu = section("cpu", lambda: _build(CpuSpec, data["cpu"], "cpu"))
        runtime = section("runtime", lambda: _build(RuntimeSpec, data.get("runtime") or {}, ""))
        constraints = section("constraints", lambda: _constraints(data["constraints"]))
        ram = section("ram_bytes", lambda: parse_bytes(data["ram_bytes"], "ram_bytes"))
        storage = section(
            "storage_bytes", lambda: parse_bytes(data["storage_bytes"], "storage_bytes")
        )
        table_data = data.get("latency_table")
        table = section(
            "latency_table",
            lambda: LatencyTable.from_dict(table_data) if table_data is not None else None,
        )
        reports = section("latency_reports", lambda: _reports(data.get("latency_reports") or []))
        measure = data.get("measure_on_devices", False)
        if not isinstance(measure, bool):
            problems.add(f"measure_on_devices must be true or false, not {measure!r}")
        problems.raise_any()
        assert cpu and runtime and constraints and ram and storage  # else raised just above
        return cls(
            name=data["name"],
            cpu=cpu,
            ram_bytes=ram,
            storage_bytes=storage,
            constraints=constraints,
            runtime=runtime,
            latency_table=table,
            latency_reports=reports or (),
            measure_on_devices=measure,
        )


TOP_LEVEL_FIELDS = (
    "name",
    "cpu",
    "ram_bytes",
    "storage_bytes",
    "runtime",
    "constraints",
    "latency_table",
    "latency_reports",
    "measure_on_devices",
)
REQUIRED_FIELDS = ("name", "cpu", "ram_bytes", "storage_bytes", "constraints")


class _Problems:
    """Every problem of one profile, each named by where it is, raised as one error."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.found: list[str] = []

    def add(self, problem: str) -> None:
        self.found.append(problem)

    @contextlib.contextmanager
    def section(self, key: str = "") -> Iterator[None]:
        try:
            yield
        except InvalidArgumentError as exc:
            text = str(exc)
            self.add(text if not key or text.startswith(key) else f"{key}: {text}")

    def raise_any(self) -> None:
        if len(self.found) == 1:
            raise InvalidArgumentError(f"{self.where}: {self.found[0]}")
        if self.found:
            listed = "; ".join(f"({i}) {p}" for i, p in enumerate(self.found, 1))
            raise InvalidArgumentError(f"{self.where}: {len(self.found)} problems: {listed}")


def _constraints(value: object) -> Constraints:
    limits = dict(_mapping(value, "constraints"))
    for key in ("max_model_bytes", "max_peak_memory_bytes"):
        if key in limits:
            limits[key] = parse_bytes(limits[key], f"constraints.{key}")
    built: Constraints = _build(Constraints, limits, "constraints")
    return built


def _reports(reports: object) -> tuple[LatencyReport, ...]:
    if not isinstance(reports, list):
        raise InvalidArgumentError("latency_reports must be a list")
    return tuple(_build(LatencyReport, r, f"latency_reports[{i}]") for i, r in enumerate(reports))


def _missing(names: Sequence[str]) -> str:
    quoted = ", ".join(repr(n) for n in names)
    return f"missing field{'s' if len(names) > 1 else ''} {quoted}"


def _positive(value: object, field: str, most: float | None = None) -> None:
    """A positive finite number, at most `most` when given (every field has a ceiling a
    real device stays far below, so nothing absurd reaches search or a database)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{field} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{field} must be positive, got {value!r}")
    if most is not None and value > most:
        raise InvalidArgumentError(f"{field} must be at most {most:g}, got {value!r}")


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _only(data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        prefix = f"{where}: " if where else ""
        raise InvalidArgumentError(f"{prefix}unknown fields {unknown}; allowed: {list(allowed)}")


def _build(cls: type, value: object, where: str) -> Any:
    """`cls` from a mapping whose keys are its fields; an unknown or a missing field is
    named (never Python's own words about a constructor's arguments)."""
    data = _mapping(value, where or cls.__name__)
    allowed = tuple(f.name for f in fields(cls))
    _only(data, allowed, where)
    required = [
        f.name
        for f in fields(cls)
        if f.default is MISSING and f.default_factory is MISSING and f.name not in data
    ]
    if required:
        prefix = f"{where}: " if where else ""
        raise InvalidArgumentError(prefix + _missing(required))
    return cls(**data)


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}
