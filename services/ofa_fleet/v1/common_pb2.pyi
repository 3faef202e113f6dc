import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GraphOptimization(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRAPH_OPTIMIZATION_UNSPECIFIED: _ClassVar[GraphOptimization]
    GRAPH_OPTIMIZATION_DISABLED: _ClassVar[GraphOptimization]
    GRAPH_OPTIMIZATION_BASIC: _ClassVar[GraphOptimization]
    GRAPH_OPTIMIZATION_EXTENDED: _ClassVar[GraphOptimization]
    GRAPH_OPTIMIZATION_ALL: _ClassVar[GraphOptimization]
GRAPH_OPTIMIZATION_UNSPECIFIED: GraphOptimization
GRAPH_OPTIMIZATION_DISABLED: GraphOptimization
GRAPH_OPTIMIZATION_BASIC: GraphOptimization
GRAPH_OPTIMIZATION_EXTENDED: GraphOptimization
GRAPH_OPTIMIZATION_ALL: GraphOptimization

class CpuSpec(_message.Message):
    __slots__ = ("architecture", "cores", "clock_ghz", "peak_gflops", "memory_bandwidth_gbps")
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    CORES_FIELD_NUMBER: _ClassVar[int]
    CLOCK_GHZ_FIELD_NUMBER: _ClassVar[int]
    PEAK_GFLOPS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BANDWIDTH_GBPS_FIELD_NUMBER: _ClassVar[int]
    architecture: str
    cores: int
    clock_ghz: float
    peak_gflops: float
    memory_bandwidth_gbps: float
    def __init__(self, architecture: _Optional[str] = ..., cores: _Optional[int] = ..., clock_ghz: _Optional[float] = ..., peak_gflops: _Optional[float] = ..., memory_bandwidth_gbps: _Optional[float] = ...) -> None: ...

class RuntimeSpec(_message.Message):
    __slots__ = ("engine", "execution_provider", "threads", "graph_optimization")
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    GRAPH_OPTIMIZATION_FIELD_NUMBER: _ClassVar[int]
    engine: str
    execution_provider: str
    threads: int
    graph_optimization: GraphOptimization
    def __init__(self, engine: _Optional[str] = ..., execution_provider: _Optional[str] = ..., threads: _Optional[int] = ..., graph_optimization: _Optional[_Union[GraphOptimization, str]] = ...) -> None: ...

class Constraints(_message.Message):
    __slots__ = ("latency_budget", "batch_size", "resolution", "max_model_bytes", "max_peak_memory_bytes", "min_top1")
    LATENCY_BUDGET_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    MAX_MODEL_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MIN_TOP1_FIELD_NUMBER: _ClassVar[int]
    latency_budget: _duration_pb2.Duration
    batch_size: int
    resolution: int
    max_model_bytes: int
    max_peak_memory_bytes: int
    min_top1: float
    def __init__(self, latency_budget: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., batch_size: _Optional[int] = ..., resolution: _Optional[int] = ..., max_model_bytes: _Optional[int] = ..., max_peak_memory_bytes: _Optional[int] = ..., min_top1: _Optional[float] = ...) -> None: ...

class LatencyReport(_message.Message):
    __slots__ = ("arch", "measured_ms")
    ARCH_FIELD_NUMBER: _ClassVar[int]
    MEASURED_MS_FIELD_NUMBER: _ClassVar[int]
    arch: str
    measured_ms: float
    def __init__(self, arch: _Optional[str] = ..., measured_ms: _Optional[float] = ...) -> None: ...

class HardwareProfile(_message.Message):
    __slots__ = ("name", "cpu", "ram_bytes", "storage_bytes", "runtime", "constraints", "latency_table_json", "latency_reports", "measure_on_devices")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    RAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_TABLE_JSON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_REPORTS_FIELD_NUMBER: _ClassVar[int]
    MEASURE_ON_DEVICES_FIELD_NUMBER: _ClassVar[int]
    name: str
    cpu: CpuSpec
    ram_bytes: int
    storage_bytes: int
    runtime: RuntimeSpec
    constraints: Constraints
    latency_table_json: str
    latency_reports: _containers.RepeatedCompositeFieldContainer[LatencyReport]
    measure_on_devices: bool
    def __init__(self, name: _Optional[str] = ..., cpu: _Optional[_Union[CpuSpec, _Mapping]] = ..., ram_bytes: _Optional[int] = ..., storage_bytes: _Optional[int] = ..., runtime: _Optional[_Union[RuntimeSpec, _Mapping]] = ..., constraints: _Optional[_Union[Constraints, _Mapping]] = ..., latency_table_json: _Optional[str] = ..., latency_reports: _Optional[_Iterable[_Union[LatencyReport, _Mapping]]] = ..., measure_on_devices: _Optional[bool] = ...) -> None: ...

class BlockConfig(_message.Message):
    __slots__ = ("kernel_size", "expand_ratio")
    KERNEL_SIZE_FIELD_NUMBER: _ClassVar[int]
    EXPAND_RATIO_FIELD_NUMBER: _ClassVar[int]
    kernel_size: int
    expand_ratio: int
    def __init__(self, kernel_size: _Optional[int] = ..., expand_ratio: _Optional[int] = ...) -> None: ...

class StageConfig(_message.Message):
    __slots__ = ("blocks",)
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    blocks: _containers.RepeatedCompositeFieldContainer[BlockConfig]
    def __init__(self, blocks: _Optional[_Iterable[_Union[BlockConfig, _Mapping]]] = ...) -> None: ...

class ArchConfig(_message.Message):
    __slots__ = ("resolution", "stages")
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    resolution: int
    stages: _containers.RepeatedCompositeFieldContainer[StageConfig]
    def __init__(self, resolution: _Optional[int] = ..., stages: _Optional[_Iterable[_Union[StageConfig, _Mapping]]] = ...) -> None: ...

class ModelChunk(_message.Message):
    __slots__ = ("offset", "data")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class EnergyCost(_message.Message):
    __slots__ = ("cpu_seconds", "energy_joules", "co2e_grams")
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_JOULES_FIELD_NUMBER: _ClassVar[int]
    CO2E_GRAMS_FIELD_NUMBER: _ClassVar[int]
    cpu_seconds: float
    energy_joules: float
    co2e_grams: float
    def __init__(self, cpu_seconds: _Optional[float] = ..., energy_joules: _Optional[float] = ..., co2e_grams: _Optional[float] = ...) -> None: ...

class EnergyModel(_message.Message):
    __slots__ = ("power_source", "watts_per_core", "grid_g_per_kwh", "grid_region")
    POWER_SOURCE_FIELD_NUMBER: _ClassVar[int]
    WATTS_PER_CORE_FIELD_NUMBER: _ClassVar[int]
    GRID_G_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    GRID_REGION_FIELD_NUMBER: _ClassVar[int]
    power_source: str
    watts_per_core: float
    grid_g_per_kwh: float
    grid_region: str
    def __init__(self, power_source: _Optional[str] = ..., watts_per_core: _Optional[float] = ..., grid_g_per_kwh: _Optional[float] = ..., grid_region: _Optional[str] = ...) -> None: ...

class ActivityCost(_message.Message):
    __slots__ = ("activity", "detail", "cost")
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    activity: str
    detail: str
    cost: EnergyCost
    def __init__(self, activity: _Optional[str] = ..., detail: _Optional[str] = ..., cost: _Optional[_Union[EnergyCost, _Mapping]] = ...) -> None: ...

class ScratchReference(_message.Message):
    __slots__ = ("archs", "target_top1", "reached_top1", "cost_per_network", "epochs")
    ARCHS_FIELD_NUMBER: _ClassVar[int]
    TARGET_TOP1_FIELD_NUMBER: _ClassVar[int]
    REACHED_TOP1_FIELD_NUMBER: _ClassVar[int]
    COST_PER_NETWORK_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    archs: _containers.RepeatedScalarFieldContainer[str]
    target_top1: float
    reached_top1: float
    cost_per_network: EnergyCost
    epochs: float
    def __init__(self, archs: _Optional[_Iterable[str]] = ..., target_top1: _Optional[float] = ..., reached_top1: _Optional[float] = ..., cost_per_network: _Optional[_Union[EnergyCost, _Mapping]] = ..., epochs: _Optional[float] = ...) -> None: ...

class SupernetLedger(_message.Message):
    __slots__ = ("supernet_version", "activities", "scratch", "energy_model")
    SUPERNET_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTIVITIES_FIELD_NUMBER: _ClassVar[int]
    SCRATCH_FIELD_NUMBER: _ClassVar[int]
    ENERGY_MODEL_FIELD_NUMBER: _ClassVar[int]
    supernet_version: str
    activities: _containers.RepeatedCompositeFieldContainer[ActivityCost]
    scratch: ScratchReference
    energy_model: EnergyModel
    def __init__(self, supernet_version: _Optional[str] = ..., activities: _Optional[_Iterable[_Union[ActivityCost, _Mapping]]] = ..., scratch: _Optional[_Union[ScratchReference, _Mapping]] = ..., energy_model: _Optional[_Union[EnergyModel, _Mapping]] = ...) -> None: ...
