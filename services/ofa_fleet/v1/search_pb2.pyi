import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ofa_fleet.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_STAGE_UNSPECIFIED: _ClassVar[SearchStage]
    SEARCH_STAGE_EVOLUTION: _ClassVar[SearchStage]
    SEARCH_STAGE_RERANK: _ClassVar[SearchStage]
    SEARCH_STAGE_EXPORT: _ClassVar[SearchStage]

class StopReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOP_REASON_UNSPECIFIED: _ClassVar[StopReason]
    STOP_REASON_CONVERGED: _ClassVar[StopReason]
    STOP_REASON_GENERATIONS: _ClassVar[StopReason]

class LatencySource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LATENCY_SOURCE_UNSPECIFIED: _ClassVar[LatencySource]
    LATENCY_SOURCE_LUT: _ClassVar[LatencySource]
    LATENCY_SOURCE_ANALYTIC: _ClassVar[LatencySource]
    LATENCY_SOURCE_CALIBRATED: _ClassVar[LatencySource]
SEARCH_STAGE_UNSPECIFIED: SearchStage
SEARCH_STAGE_EVOLUTION: SearchStage
SEARCH_STAGE_RERANK: SearchStage
SEARCH_STAGE_EXPORT: SearchStage
STOP_REASON_UNSPECIFIED: StopReason
STOP_REASON_CONVERGED: StopReason
STOP_REASON_GENERATIONS: StopReason
LATENCY_SOURCE_UNSPECIFIED: LatencySource
LATENCY_SOURCE_LUT: LatencySource
LATENCY_SOURCE_ANALYTIC: LatencySource
LATENCY_SOURCE_CALIBRATED: LatencySource

class GetSupernetRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSupernetResponse(_message.Message):
    __slots__ = ("version", "space_fingerprint", "ledger", "space_json", "in_channels", "num_classes")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPACE_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    LEDGER_FIELD_NUMBER: _ClassVar[int]
    SPACE_JSON_FIELD_NUMBER: _ClassVar[int]
    IN_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    version: str
    space_fingerprint: str
    ledger: _common_pb2.SupernetLedger
    space_json: str
    in_channels: int
    num_classes: int
    def __init__(self, version: _Optional[str] = ..., space_fingerprint: _Optional[str] = ..., ledger: _Optional[_Union[_common_pb2.SupernetLedger, _Mapping]] = ..., space_json: _Optional[str] = ..., in_channels: _Optional[int] = ..., num_classes: _Optional[int] = ...) -> None: ...

class SpecializeRequest(_message.Message):
    __slots__ = ("profile", "profile_name", "options")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_NAME_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.HardwareProfile
    profile_name: str
    options: SearchOptions
    def __init__(self, profile: _Optional[_Union[_common_pb2.HardwareProfile, _Mapping]] = ..., profile_name: _Optional[str] = ..., options: _Optional[_Union[SearchOptions, _Mapping]] = ...) -> None: ...

class SearchOptions(_message.Message):
    __slots__ = ("seed", "population", "max_generations", "patience", "rerank_top_k", "measure_latency", "skip_cache")
    SEED_FIELD_NUMBER: _ClassVar[int]
    POPULATION_FIELD_NUMBER: _ClassVar[int]
    MAX_GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    PATIENCE_FIELD_NUMBER: _ClassVar[int]
    RERANK_TOP_K_FIELD_NUMBER: _ClassVar[int]
    MEASURE_LATENCY_FIELD_NUMBER: _ClassVar[int]
    SKIP_CACHE_FIELD_NUMBER: _ClassVar[int]
    seed: int
    population: int
    max_generations: int
    patience: int
    rerank_top_k: int
    measure_latency: bool
    skip_cache: bool
    def __init__(self, seed: _Optional[int] = ..., population: _Optional[int] = ..., max_generations: _Optional[int] = ..., patience: _Optional[int] = ..., rerank_top_k: _Optional[int] = ..., measure_latency: _Optional[bool] = ..., skip_cache: _Optional[bool] = ...) -> None: ...

class SubnetFigures(_message.Message):
    __slots__ = ("arch", "top1", "latency_ms", "model_bytes", "peak_memory_bytes", "macs")
    ARCH_FIELD_NUMBER: _ClassVar[int]
    TOP1_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    MODEL_BYTES_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MACS_FIELD_NUMBER: _ClassVar[int]
    arch: str
    top1: float
    latency_ms: float
    model_bytes: int
    peak_memory_bytes: int
    macs: int
    def __init__(self, arch: _Optional[str] = ..., top1: _Optional[float] = ..., latency_ms: _Optional[float] = ..., model_bytes: _Optional[int] = ..., peak_memory_bytes: _Optional[int] = ..., macs: _Optional[int] = ...) -> None: ...

class SearchProgress(_message.Message):
    __slots__ = ("stage", "generation", "max_generations", "candidates_evaluated", "best", "operation_name")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    MAX_GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    BEST_FIELD_NUMBER: _ClassVar[int]
    OPERATION_NAME_FIELD_NUMBER: _ClassVar[int]
    stage: SearchStage
    generation: int
    max_generations: int
    candidates_evaluated: int
    best: SubnetFigures
    operation_name: str
    def __init__(self, stage: _Optional[_Union[SearchStage, str]] = ..., generation: _Optional[int] = ..., max_generations: _Optional[int] = ..., candidates_evaluated: _Optional[int] = ..., best: _Optional[_Union[SubnetFigures, _Mapping]] = ..., operation_name: _Optional[str] = ...) -> None: ...

class SpecializeMetadata(_message.Message):
    __slots__ = ("profile_name", "create_time", "end_time", "progress", "callers")
    PROFILE_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CALLERS_FIELD_NUMBER: _ClassVar[int]
    profile_name: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    progress: SearchProgress
    callers: int
    def __init__(self, profile_name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., progress: _Optional[_Union[SearchProgress, _Mapping]] = ..., callers: _Optional[int] = ...) -> None: ...

class MeasuredFigures(_message.Message):
    __slots__ = ("top1", "model_bytes", "max_abs_diff", "latency_ms")
    TOP1_FIELD_NUMBER: _ClassVar[int]
    MODEL_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_DIFF_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    top1: float
    model_bytes: int
    max_abs_diff: float
    latency_ms: float
    def __init__(self, top1: _Optional[float] = ..., model_bytes: _Optional[int] = ..., max_abs_diff: _Optional[float] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class RerankedCandidate(_message.Message):
    __slots__ = ("predicted", "measured_top1")
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    MEASURED_TOP1_FIELD_NUMBER: _ClassVar[int]
    predicted: SubnetFigures
    measured_top1: float
    def __init__(self, predicted: _Optional[_Union[SubnetFigures, _Mapping]] = ..., measured_top1: _Optional[float] = ...) -> None: ...

class SearchStatistics(_message.Message):
    __slots__ = ("generations", "candidates_evaluated", "feasible_candidates", "stop_reason", "search_seconds", "rerank_seconds", "export_seconds", "total_seconds", "workers", "from_cache")
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    FEASIBLE_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RERANK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXPORT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    FROM_CACHE_FIELD_NUMBER: _ClassVar[int]
    generations: int
    candidates_evaluated: int
    feasible_candidates: int
    stop_reason: StopReason
    search_seconds: float
    rerank_seconds: float
    export_seconds: float
    total_seconds: float
    workers: int
    from_cache: bool
    def __init__(self, generations: _Optional[int] = ..., candidates_evaluated: _Optional[int] = ..., feasible_candidates: _Optional[int] = ..., stop_reason: _Optional[_Union[StopReason, str]] = ..., search_seconds: _Optional[float] = ..., rerank_seconds: _Optional[float] = ..., export_seconds: _Optional[float] = ..., total_seconds: _Optional[float] = ..., workers: _Optional[int] = ..., from_cache: _Optional[bool] = ...) -> None: ...

class SpecializeResult(_message.Message):
    __slots__ = ("profile_name", "supernet_version", "arch", "arch_string", "predicted", "latency_source", "measured", "pareto_front", "reranked", "statistics", "model_size", "model_sha256", "cost", "operation_name")
    PROFILE_NAME_FIELD_NUMBER: _ClassVar[int]
    SUPERNET_VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    ARCH_STRING_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    MEASURED_FIELD_NUMBER: _ClassVar[int]
    PARETO_FRONT_FIELD_NUMBER: _ClassVar[int]
    RERANKED_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    MODEL_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    OPERATION_NAME_FIELD_NUMBER: _ClassVar[int]
    profile_name: str
    supernet_version: str
    arch: _common_pb2.ArchConfig
    arch_string: str
    predicted: SubnetFigures
    latency_source: LatencySource
    measured: MeasuredFigures
    pareto_front: _containers.RepeatedCompositeFieldContainer[SubnetFigures]
    reranked: _containers.RepeatedCompositeFieldContainer[RerankedCandidate]
    statistics: SearchStatistics
    model_size: int
    model_sha256: str
    cost: _common_pb2.EnergyCost
    operation_name: str
    def __init__(self, profile_name: _Optional[str] = ..., supernet_version: _Optional[str] = ..., arch: _Optional[_Union[_common_pb2.ArchConfig, _Mapping]] = ..., arch_string: _Optional[str] = ..., predicted: _Optional[_Union[SubnetFigures, _Mapping]] = ..., latency_source: _Optional[_Union[LatencySource, str]] = ..., measured: _Optional[_Union[MeasuredFigures, _Mapping]] = ..., pareto_front: _Optional[_Iterable[_Union[SubnetFigures, _Mapping]]] = ..., reranked: _Optional[_Iterable[_Union[RerankedCandidate, _Mapping]]] = ..., statistics: _Optional[_Union[SearchStatistics, _Mapping]] = ..., model_size: _Optional[int] = ..., model_sha256: _Optional[str] = ..., cost: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., operation_name: _Optional[str] = ...) -> None: ...

class SpecializeResponse(_message.Message):
    __slots__ = ("progress", "result", "chunk")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    progress: SearchProgress
    result: SpecializeResult
    chunk: _common_pb2.ModelChunk
    def __init__(self, progress: _Optional[_Union[SearchProgress, _Mapping]] = ..., result: _Optional[_Union[SpecializeResult, _Mapping]] = ..., chunk: _Optional[_Union[_common_pb2.ModelChunk, _Mapping]] = ...) -> None: ...
