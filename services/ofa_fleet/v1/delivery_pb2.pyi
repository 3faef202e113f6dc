import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.longrunning import operations_pb2 as _operations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ofa_fleet.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelChangeReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_CHANGE_REASON_UNSPECIFIED: _ClassVar[ModelChangeReason]
    MODEL_CHANGE_REASON_MISSING: _ClassVar[ModelChangeReason]
    MODEL_CHANGE_REASON_NEW_SUPERNET: _ClassVar[ModelChangeReason]
    MODEL_CHANGE_REASON_PROFILE_CHANGED: _ClassVar[ModelChangeReason]
    MODEL_CHANGE_REASON_OVER_BUDGET: _ClassVar[ModelChangeReason]
    MODEL_CHANGE_REASON_OPERATOR: _ClassVar[ModelChangeReason]

class SpecializationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPECIALIZATION_STATE_UNSPECIFIED: _ClassVar[SpecializationState]
    SPECIALIZATION_STATE_CURRENT: _ClassVar[SpecializationState]
    SPECIALIZATION_STATE_PENDING: _ClassVar[SpecializationState]
    SPECIALIZATION_STATE_FAILING: _ClassVar[SpecializationState]
    SPECIALIZATION_STATE_INFEASIBLE: _ClassVar[SpecializationState]

class RolloutState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLLOUT_STATE_UNSPECIFIED: _ClassVar[RolloutState]
    ROLLOUT_STATE_CANARY: _ClassVar[RolloutState]
    ROLLOUT_STATE_PROMOTED: _ClassVar[RolloutState]
    ROLLOUT_STATE_ROLLED_BACK: _ClassVar[RolloutState]
MODEL_CHANGE_REASON_UNSPECIFIED: ModelChangeReason
MODEL_CHANGE_REASON_MISSING: ModelChangeReason
MODEL_CHANGE_REASON_NEW_SUPERNET: ModelChangeReason
MODEL_CHANGE_REASON_PROFILE_CHANGED: ModelChangeReason
MODEL_CHANGE_REASON_OVER_BUDGET: ModelChangeReason
MODEL_CHANGE_REASON_OPERATOR: ModelChangeReason
SPECIALIZATION_STATE_UNSPECIFIED: SpecializationState
SPECIALIZATION_STATE_CURRENT: SpecializationState
SPECIALIZATION_STATE_PENDING: SpecializationState
SPECIALIZATION_STATE_FAILING: SpecializationState
SPECIALIZATION_STATE_INFEASIBLE: SpecializationState
ROLLOUT_STATE_UNSPECIFIED: RolloutState
ROLLOUT_STATE_CANARY: RolloutState
ROLLOUT_STATE_PROMOTED: RolloutState
ROLLOUT_STATE_ROLLED_BACK: RolloutState

class GetLatencyMeasurementRequest(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: str
    def __init__(self, device: _Optional[str] = ...) -> None: ...

class GetLatencyMeasurementResponse(_message.Message):
    __slots__ = ("measurement",)
    MEASUREMENT_FIELD_NUMBER: _ClassVar[int]
    measurement: LatencyMeasurement
    def __init__(self, measurement: _Optional[_Union[LatencyMeasurement, _Mapping]] = ...) -> None: ...

class LatencyMeasurement(_message.Message):
    __slots__ = ("profile_name", "space_json", "space_fingerprint", "in_channels", "num_classes", "threads", "execution_provider", "graph_optimization")
    PROFILE_NAME_FIELD_NUMBER: _ClassVar[int]
    SPACE_JSON_FIELD_NUMBER: _ClassVar[int]
    SPACE_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    IN_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    GRAPH_OPTIMIZATION_FIELD_NUMBER: _ClassVar[int]
    profile_name: str
    space_json: str
    space_fingerprint: str
    in_channels: int
    num_classes: int
    threads: int
    execution_provider: str
    graph_optimization: _common_pb2.GraphOptimization
    def __init__(self, profile_name: _Optional[str] = ..., space_json: _Optional[str] = ..., space_fingerprint: _Optional[str] = ..., in_channels: _Optional[int] = ..., num_classes: _Optional[int] = ..., threads: _Optional[int] = ..., execution_provider: _Optional[str] = ..., graph_optimization: _Optional[_Union[_common_pb2.GraphOptimization, str]] = ...) -> None: ...

class ModelManifest(_message.Message):
    __slots__ = ("name", "canonical_manifest", "signature", "key_id", "sha256", "size_bytes", "arch", "profile_name", "profile_revision", "supernet_version", "create_time", "chunk_size", "download_urls")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_MANIFEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    PROFILE_NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_REVISION_FIELD_NUMBER: _ClassVar[int]
    SUPERNET_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_URLS_FIELD_NUMBER: _ClassVar[int]
    name: str
    canonical_manifest: bytes
    signature: bytes
    key_id: str
    sha256: str
    size_bytes: int
    arch: str
    profile_name: str
    profile_revision: int
    supernet_version: str
    create_time: _timestamp_pb2.Timestamp
    chunk_size: int
    download_urls: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., canonical_manifest: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., key_id: _Optional[str] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., arch: _Optional[str] = ..., profile_name: _Optional[str] = ..., profile_revision: _Optional[int] = ..., supernet_version: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., chunk_size: _Optional[int] = ..., download_urls: _Optional[_Iterable[str]] = ...) -> None: ...

class GetModelManifestRequest(_message.Message):
    __slots__ = ("device", "have_sha256")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    HAVE_SHA256_FIELD_NUMBER: _ClassVar[int]
    device: str
    have_sha256: str
    def __init__(self, device: _Optional[str] = ..., have_sha256: _Optional[str] = ...) -> None: ...

class UpToDate(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    def __init__(self, sha256: _Optional[str] = ...) -> None: ...

class GetModelManifestResponse(_message.Message):
    __slots__ = ("manifest", "up_to_date")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    UP_TO_DATE_FIELD_NUMBER: _ClassVar[int]
    manifest: ModelManifest
    up_to_date: UpToDate
    def __init__(self, manifest: _Optional[_Union[ModelManifest, _Mapping]] = ..., up_to_date: _Optional[_Union[UpToDate, _Mapping]] = ...) -> None: ...

class ReadModelRequest(_message.Message):
    __slots__ = ("sha256", "read_offset", "read_limit")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    READ_OFFSET_FIELD_NUMBER: _ClassVar[int]
    READ_LIMIT_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    read_offset: int
    read_limit: int
    def __init__(self, sha256: _Optional[str] = ..., read_offset: _Optional[int] = ..., read_limit: _Optional[int] = ...) -> None: ...

class ReadModelResponse(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: _common_pb2.ModelChunk
    def __init__(self, chunk: _Optional[_Union[_common_pb2.ModelChunk, _Mapping]] = ...) -> None: ...

class WatchModelRequest(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: str
    def __init__(self, device: _Optional[str] = ...) -> None: ...

class WatchModelResponse(_message.Message):
    __slots__ = ("manifest",)
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    manifest: ModelManifest
    def __init__(self, manifest: _Optional[_Union[ModelManifest, _Mapping]] = ...) -> None: ...

class GetSigningKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSigningKeyResponse(_message.Message):
    __slots__ = ("public_key_pem", "key_id", "endorsements")
    PUBLIC_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ENDORSEMENTS_FIELD_NUMBER: _ClassVar[int]
    public_key_pem: bytes
    key_id: str
    endorsements: _containers.RepeatedCompositeFieldContainer[KeyEndorsement]
    def __init__(self, public_key_pem: _Optional[bytes] = ..., key_id: _Optional[str] = ..., endorsements: _Optional[_Iterable[_Union[KeyEndorsement, _Mapping]]] = ...) -> None: ...

class KeyEndorsement(_message.Message):
    __slots__ = ("signer_key_id", "signature")
    SIGNER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    signer_key_id: str
    signature: bytes
    def __init__(self, signer_key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class StoredModel(_message.Message):
    __slots__ = ("manifest", "current_for_fleets")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FOR_FLEETS_FIELD_NUMBER: _ClassVar[int]
    manifest: ModelManifest
    current_for_fleets: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, manifest: _Optional[_Union[ModelManifest, _Mapping]] = ..., current_for_fleets: _Optional[_Iterable[str]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[StoredModel]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[StoredModel, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetProfileModelsRequest(_message.Message):
    __slots__ = ("name", "history_page_size", "history_page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HISTORY_PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    history_page_size: int
    history_page_token: str
    def __init__(self, name: _Optional[str] = ..., history_page_size: _Optional[int] = ..., history_page_token: _Optional[str] = ...) -> None: ...

class ModelHistoryEntry(_message.Message):
    __slots__ = ("sha256", "reason", "change_time")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    reason: ModelChangeReason
    change_time: _timestamp_pb2.Timestamp
    def __init__(self, sha256: _Optional[str] = ..., reason: _Optional[_Union[ModelChangeReason, str]] = ..., change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetProfileModelsResponse(_message.Message):
    __slots__ = ("profile_name", "current", "history", "state", "last_error", "attempts", "next_attempt_time", "rollouts", "over_budget_sha256", "over_budget_latency_ms", "over_budget_reports", "next_history_page_token", "state_profile_revision")
    PROFILE_NAME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    ROLLOUTS_FIELD_NUMBER: _ClassVar[int]
    OVER_BUDGET_SHA256_FIELD_NUMBER: _ClassVar[int]
    OVER_BUDGET_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    OVER_BUDGET_REPORTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_HISTORY_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_PROFILE_REVISION_FIELD_NUMBER: _ClassVar[int]
    profile_name: str
    current: ModelManifest
    history: _containers.RepeatedCompositeFieldContainer[ModelHistoryEntry]
    state: SpecializationState
    last_error: str
    attempts: int
    next_attempt_time: _timestamp_pb2.Timestamp
    rollouts: _containers.RepeatedCompositeFieldContainer[FleetRollout]
    over_budget_sha256: str
    over_budget_latency_ms: float
    over_budget_reports: int
    next_history_page_token: str
    state_profile_revision: int
    def __init__(self, profile_name: _Optional[str] = ..., current: _Optional[_Union[ModelManifest, _Mapping]] = ..., history: _Optional[_Iterable[_Union[ModelHistoryEntry, _Mapping]]] = ..., state: _Optional[_Union[SpecializationState, str]] = ..., last_error: _Optional[str] = ..., attempts: _Optional[int] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rollouts: _Optional[_Iterable[_Union[FleetRollout, _Mapping]]] = ..., over_budget_sha256: _Optional[str] = ..., over_budget_latency_ms: _Optional[float] = ..., over_budget_reports: _Optional[int] = ..., next_history_page_token: _Optional[str] = ..., state_profile_revision: _Optional[int] = ...) -> None: ...

class FleetRollout(_message.Message):
    __slots__ = ("fleet_name", "state", "from_sha256", "to_sha256", "canary_devices", "successful_canaries", "failed_canaries", "needed_successes", "start_time", "update_time")
    FLEET_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FROM_SHA256_FIELD_NUMBER: _ClassVar[int]
    TO_SHA256_FIELD_NUMBER: _ClassVar[int]
    CANARY_DEVICES_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_CANARIES_FIELD_NUMBER: _ClassVar[int]
    FAILED_CANARIES_FIELD_NUMBER: _ClassVar[int]
    NEEDED_SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    fleet_name: str
    state: RolloutState
    from_sha256: str
    to_sha256: str
    canary_devices: int
    successful_canaries: int
    failed_canaries: int
    needed_successes: int
    start_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, fleet_name: _Optional[str] = ..., state: _Optional[_Union[RolloutState, str]] = ..., from_sha256: _Optional[str] = ..., to_sha256: _Optional[str] = ..., canary_devices: _Optional[int] = ..., successful_canaries: _Optional[int] = ..., failed_canaries: _Optional[int] = ..., needed_successes: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PinFleetRequest(_message.Message):
    __slots__ = ("fleet", "sha256", "rollback", "expected_fleet_revision")
    FLEET_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FLEET_REVISION_FIELD_NUMBER: _ClassVar[int]
    fleet: str
    sha256: str
    rollback: bool
    expected_fleet_revision: int
    def __init__(self, fleet: _Optional[str] = ..., sha256: _Optional[str] = ..., rollback: _Optional[bool] = ..., expected_fleet_revision: _Optional[int] = ...) -> None: ...

class PinFleetResponse(_message.Message):
    __slots__ = ("sha256", "fleet_revision")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    FLEET_REVISION_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    fleet_revision: int
    def __init__(self, sha256: _Optional[str] = ..., fleet_revision: _Optional[int] = ...) -> None: ...

class RespecializeRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RespecializeMetadata(_message.Message):
    __slots__ = ("profile_name", "create_time", "end_time", "state", "attempts", "last_error", "next_attempt_time")
    PROFILE_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    profile_name: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    state: SpecializationState
    attempts: int
    last_error: str
    next_attempt_time: _timestamp_pb2.Timestamp
    def __init__(self, profile_name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[SpecializationState, str]] = ..., attempts: _Optional[int] = ..., last_error: _Optional[str] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetCarbonLedgerRequest(_message.Message):
    __slots__ = ("fleet", "page_size", "page_token")
    FLEET_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    fleet: str
    page_size: int
    page_token: str
    def __init__(self, fleet: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class PerUnit(_message.Message):
    __slots__ = ("cpu_seconds", "energy_joules", "co2e_grams")
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_JOULES_FIELD_NUMBER: _ClassVar[int]
    CO2E_GRAMS_FIELD_NUMBER: _ClassVar[int]
    cpu_seconds: float
    energy_joules: float
    co2e_grams: float
    def __init__(self, cpu_seconds: _Optional[float] = ..., energy_joules: _Optional[float] = ..., co2e_grams: _Optional[float] = ...) -> None: ...

class ProfileCarbon(_message.Message):
    __slots__ = ("profile_name", "specializations", "specialization", "amortized", "served_devices")
    PROFILE_NAME_FIELD_NUMBER: _ClassVar[int]
    SPECIALIZATIONS_FIELD_NUMBER: _ClassVar[int]
    SPECIALIZATION_FIELD_NUMBER: _ClassVar[int]
    AMORTIZED_FIELD_NUMBER: _ClassVar[int]
    SERVED_DEVICES_FIELD_NUMBER: _ClassVar[int]
    profile_name: str
    specializations: int
    specialization: _common_pb2.EnergyCost
    amortized: _common_pb2.EnergyCost
    served_devices: int
    def __init__(self, profile_name: _Optional[str] = ..., specializations: _Optional[int] = ..., specialization: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., amortized: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., served_devices: _Optional[int] = ...) -> None: ...

class FleetCarbon(_message.Message):
    __slots__ = ("fleet_name", "profile_name", "devices", "served_devices", "device_profiling", "profile_amortized", "attributed", "per_served_device", "counterfactual", "ratio")
    FLEET_NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_NAME_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    SERVED_DEVICES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_PROFILING_FIELD_NUMBER: _ClassVar[int]
    PROFILE_AMORTIZED_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTED_FIELD_NUMBER: _ClassVar[int]
    PER_SERVED_DEVICE_FIELD_NUMBER: _ClassVar[int]
    COUNTERFACTUAL_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    fleet_name: str
    profile_name: str
    devices: int
    served_devices: int
    device_profiling: _common_pb2.EnergyCost
    profile_amortized: _common_pb2.EnergyCost
    attributed: _common_pb2.EnergyCost
    per_served_device: _common_pb2.EnergyCost
    counterfactual: _common_pb2.EnergyCost
    ratio: PerUnit
    def __init__(self, fleet_name: _Optional[str] = ..., profile_name: _Optional[str] = ..., devices: _Optional[int] = ..., served_devices: _Optional[int] = ..., device_profiling: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., profile_amortized: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., attributed: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., per_served_device: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., counterfactual: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., ratio: _Optional[_Union[PerUnit, _Mapping]] = ...) -> None: ...

class GetCarbonLedgerResponse(_message.Message):
    __slots__ = ("supernet_version", "supernet_ledger", "training", "training_total", "predictor_fit", "fixed", "specialized_profiles", "specialization_total", "device_profiling_total", "once_for_all_total", "devices", "served_devices", "per_served_device", "profiles", "fleets", "scratch_per_network", "counterfactual", "ratio", "break_even_profiles", "counterfactual_unavailable_reason", "training_unavailable_reason", "next_page_token")
    SUPERNET_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUPERNET_LEDGER_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    TRAINING_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIT_FIELD_NUMBER: _ClassVar[int]
    FIXED_FIELD_NUMBER: _ClassVar[int]
    SPECIALIZED_PROFILES_FIELD_NUMBER: _ClassVar[int]
    SPECIALIZATION_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_PROFILING_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ONCE_FOR_ALL_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    SERVED_DEVICES_FIELD_NUMBER: _ClassVar[int]
    PER_SERVED_DEVICE_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    FLEETS_FIELD_NUMBER: _ClassVar[int]
    SCRATCH_PER_NETWORK_FIELD_NUMBER: _ClassVar[int]
    COUNTERFACTUAL_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    BREAK_EVEN_PROFILES_FIELD_NUMBER: _ClassVar[int]
    COUNTERFACTUAL_UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    TRAINING_UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    supernet_version: str
    supernet_ledger: _common_pb2.SupernetLedger
    training: _containers.RepeatedCompositeFieldContainer[_common_pb2.ActivityCost]
    training_total: _common_pb2.EnergyCost
    predictor_fit: _common_pb2.EnergyCost
    fixed: _common_pb2.EnergyCost
    specialized_profiles: int
    specialization_total: _common_pb2.EnergyCost
    device_profiling_total: _common_pb2.EnergyCost
    once_for_all_total: _common_pb2.EnergyCost
    devices: int
    served_devices: int
    per_served_device: _common_pb2.EnergyCost
    profiles: _containers.RepeatedCompositeFieldContainer[ProfileCarbon]
    fleets: _containers.RepeatedCompositeFieldContainer[FleetCarbon]
    scratch_per_network: _common_pb2.EnergyCost
    counterfactual: _common_pb2.EnergyCost
    ratio: PerUnit
    break_even_profiles: PerUnit
    counterfactual_unavailable_reason: str
    training_unavailable_reason: str
    next_page_token: str
    def __init__(self, supernet_version: _Optional[str] = ..., supernet_ledger: _Optional[_Union[_common_pb2.SupernetLedger, _Mapping]] = ..., training: _Optional[_Iterable[_Union[_common_pb2.ActivityCost, _Mapping]]] = ..., training_total: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., predictor_fit: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., fixed: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., specialized_profiles: _Optional[int] = ..., specialization_total: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., device_profiling_total: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., once_for_all_total: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., devices: _Optional[int] = ..., served_devices: _Optional[int] = ..., per_served_device: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., profiles: _Optional[_Iterable[_Union[ProfileCarbon, _Mapping]]] = ..., fleets: _Optional[_Iterable[_Union[FleetCarbon, _Mapping]]] = ..., scratch_per_network: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., counterfactual: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ..., ratio: _Optional[_Union[PerUnit, _Mapping]] = ..., break_even_profiles: _Optional[_Union[PerUnit, _Mapping]] = ..., counterfactual_unavailable_reason: _Optional[str] = ..., training_unavailable_reason: _Optional[str] = ..., next_page_token: _Optional[str] = ...) -> None: ...
