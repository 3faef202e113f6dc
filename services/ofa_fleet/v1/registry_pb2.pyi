import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ofa_fleet.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProfileView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROFILE_VIEW_UNSPECIFIED: _ClassVar[ProfileView]
    PROFILE_VIEW_BASIC: _ClassVar[ProfileView]
    PROFILE_VIEW_FULL: _ClassVar[ProfileView]

class ChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_KIND_UNSPECIFIED: _ClassVar[ChangeKind]
    CHANGE_KIND_PROFILE: _ClassVar[ChangeKind]
    CHANGE_KIND_FLEET: _ClassVar[ChangeKind]
    CHANGE_KIND_DEVICE: _ClassVar[ChangeKind]

class ChangeOperation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_OPERATION_UNSPECIFIED: _ClassVar[ChangeOperation]
    CHANGE_OPERATION_CREATED: _ClassVar[ChangeOperation]
    CHANGE_OPERATION_UPDATED: _ClassVar[ChangeOperation]
    CHANGE_OPERATION_DELETED: _ClassVar[ChangeOperation]
PROFILE_VIEW_UNSPECIFIED: ProfileView
PROFILE_VIEW_BASIC: ProfileView
PROFILE_VIEW_FULL: ProfileView
CHANGE_KIND_UNSPECIFIED: ChangeKind
CHANGE_KIND_PROFILE: ChangeKind
CHANGE_KIND_FLEET: ChangeKind
CHANGE_KIND_DEVICE: ChangeKind
CHANGE_OPERATION_UNSPECIFIED: ChangeOperation
CHANGE_OPERATION_CREATED: ChangeOperation
CHANGE_OPERATION_UPDATED: ChangeOperation
CHANGE_OPERATION_DELETED: ChangeOperation

class Profile(_message.Message):
    __slots__ = ("name", "spec", "revision", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: _common_pb2.HardwareProfile
    revision: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[_common_pb2.HardwareProfile, _Mapping]] = ..., revision: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StagedRollout(_message.Message):
    __slots__ = ("canary_percent", "failure_threshold_percent", "min_success_reports")
    CANARY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_THRESHOLD_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MIN_SUCCESS_REPORTS_FIELD_NUMBER: _ClassVar[int]
    canary_percent: int
    failure_threshold_percent: int
    min_success_reports: int
    def __init__(self, canary_percent: _Optional[int] = ..., failure_threshold_percent: _Optional[int] = ..., min_success_reports: _Optional[int] = ...) -> None: ...

class AutoLatestRollout(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PinnedRollout(_message.Message):
    __slots__ = ("model_sha256",)
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    model_sha256: str
    def __init__(self, model_sha256: _Optional[str] = ...) -> None: ...

class RolloutPolicy(_message.Message):
    __slots__ = ("auto_latest", "pinned", "staged")
    AUTO_LATEST_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    STAGED_FIELD_NUMBER: _ClassVar[int]
    auto_latest: AutoLatestRollout
    pinned: PinnedRollout
    staged: StagedRollout
    def __init__(self, auto_latest: _Optional[_Union[AutoLatestRollout, _Mapping]] = ..., pinned: _Optional[_Union[PinnedRollout, _Mapping]] = ..., staged: _Optional[_Union[StagedRollout, _Mapping]] = ...) -> None: ...

class Fleet(_message.Message):
    __slots__ = ("name", "profile", "rollout", "revision", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    profile: str
    rollout: RolloutPolicy
    revision: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., profile: _Optional[str] = ..., rollout: _Optional[_Union[RolloutPolicy, _Mapping]] = ..., revision: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeviceStatus(_message.Message):
    __slots__ = ("model_sha256", "measured_latency_ms", "onnxruntime_version", "errors", "report_time")
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    MEASURED_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ONNXRUNTIME_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    REPORT_TIME_FIELD_NUMBER: _ClassVar[int]
    model_sha256: str
    measured_latency_ms: float
    onnxruntime_version: str
    errors: _containers.RepeatedScalarFieldContainer[str]
    report_time: _timestamp_pb2.Timestamp
    def __init__(self, model_sha256: _Optional[str] = ..., measured_latency_ms: _Optional[float] = ..., onnxruntime_version: _Optional[str] = ..., errors: _Optional[_Iterable[str]] = ..., report_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StatusReport(_message.Message):
    __slots__ = ("model_sha256", "measured_latency_ms", "onnxruntime_version", "errors", "boot_to_model_seconds", "profiling_cost")
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    MEASURED_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ONNXRUNTIME_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    BOOT_TO_MODEL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROFILING_COST_FIELD_NUMBER: _ClassVar[int]
    model_sha256: str
    measured_latency_ms: float
    onnxruntime_version: str
    errors: _containers.RepeatedScalarFieldContainer[str]
    boot_to_model_seconds: float
    profiling_cost: _common_pb2.EnergyCost
    def __init__(self, model_sha256: _Optional[str] = ..., measured_latency_ms: _Optional[float] = ..., onnxruntime_version: _Optional[str] = ..., errors: _Optional[_Iterable[str]] = ..., boot_to_model_seconds: _Optional[float] = ..., profiling_cost: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("name", "id", "fleet", "hardware_id", "create_time", "last_seen_time", "status", "revision", "profiling_cost_total")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    FLEET_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PROFILING_COST_TOTAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    fleet: str
    hardware_id: str
    create_time: _timestamp_pb2.Timestamp
    last_seen_time: _timestamp_pb2.Timestamp
    status: DeviceStatus
    revision: int
    profiling_cost_total: _common_pb2.EnergyCost
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., fleet: _Optional[str] = ..., hardware_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[DeviceStatus, _Mapping]] = ..., revision: _Optional[int] = ..., profiling_cost_total: _Optional[_Union[_common_pb2.EnergyCost, _Mapping]] = ...) -> None: ...

class CreateProfileRequest(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.HardwareProfile
    def __init__(self, profile: _Optional[_Union[_common_pb2.HardwareProfile, _Mapping]] = ...) -> None: ...

class CreateProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("name", "view")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    name: str
    view: ProfileView
    def __init__(self, name: _Optional[str] = ..., view: _Optional[_Union[ProfileView, str]] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class ListProfilesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "view")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    view: ProfileView
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., view: _Optional[_Union[ProfileView, str]] = ...) -> None: ...

class ListProfilesResponse(_message.Message):
    __slots__ = ("profiles", "next_page_token")
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[Profile]
    next_page_token: str
    def __init__(self, profiles: _Optional[_Iterable[_Union[Profile, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateProfileRequest(_message.Message):
    __slots__ = ("profile", "expected_revision", "update_mask")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    profile: _common_pb2.HardwareProfile
    expected_revision: int
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, profile: _Optional[_Union[_common_pb2.HardwareProfile, _Mapping]] = ..., expected_revision: _Optional[int] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class DeleteProfileRequest(_message.Message):
    __slots__ = ("name", "expected_revision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    expected_revision: int
    def __init__(self, name: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class DeleteProfileResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateFleetRequest(_message.Message):
    __slots__ = ("fleet", "fleet_id")
    FLEET_FIELD_NUMBER: _ClassVar[int]
    FLEET_ID_FIELD_NUMBER: _ClassVar[int]
    fleet: Fleet
    fleet_id: str
    def __init__(self, fleet: _Optional[_Union[Fleet, _Mapping]] = ..., fleet_id: _Optional[str] = ...) -> None: ...

class CreateFleetResponse(_message.Message):
    __slots__ = ("fleet", "enrolment_token")
    FLEET_FIELD_NUMBER: _ClassVar[int]
    ENROLMENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    fleet: Fleet
    enrolment_token: str
    def __init__(self, fleet: _Optional[_Union[Fleet, _Mapping]] = ..., enrolment_token: _Optional[str] = ...) -> None: ...

class GetFleetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetFleetResponse(_message.Message):
    __slots__ = ("fleet",)
    FLEET_FIELD_NUMBER: _ClassVar[int]
    fleet: Fleet
    def __init__(self, fleet: _Optional[_Union[Fleet, _Mapping]] = ...) -> None: ...

class ListFleetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFleetsResponse(_message.Message):
    __slots__ = ("fleets", "next_page_token")
    FLEETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    fleets: _containers.RepeatedCompositeFieldContainer[Fleet]
    next_page_token: str
    def __init__(self, fleets: _Optional[_Iterable[_Union[Fleet, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateFleetRequest(_message.Message):
    __slots__ = ("fleet", "expected_revision", "update_mask")
    FLEET_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    fleet: Fleet
    expected_revision: int
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, fleet: _Optional[_Union[Fleet, _Mapping]] = ..., expected_revision: _Optional[int] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateFleetResponse(_message.Message):
    __slots__ = ("fleet",)
    FLEET_FIELD_NUMBER: _ClassVar[int]
    fleet: Fleet
    def __init__(self, fleet: _Optional[_Union[Fleet, _Mapping]] = ...) -> None: ...

class DeleteFleetRequest(_message.Message):
    __slots__ = ("name", "expected_revision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    expected_revision: int
    def __init__(self, name: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class DeleteFleetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegisterDeviceRequest(_message.Message):
    __slots__ = ("hardware_id", "request_id")
    HARDWARE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    hardware_id: str
    request_id: str
    def __init__(self, hardware_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RegisterDeviceResponse(_message.Message):
    __slots__ = ("device", "device_token", "heartbeat_interval")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    device: Device
    device_token: str
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., device_token: _Optional[str] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("server_time", "heartbeat_interval")
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    server_time: _timestamp_pb2.Timestamp
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, server_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ReportStatusRequest(_message.Message):
    __slots__ = ("name", "report", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    report: StatusReport
    request_id: str
    def __init__(self, name: _Optional[str] = ..., report: _Optional[_Union[StatusReport, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ReportStatusResponse(_message.Message):
    __slots__ = ("device", "heartbeat_interval")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    device: Device
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SubmitLatencyTableRequest(_message.Message):
    __slots__ = ("name", "latency_table_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LATENCY_TABLE_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    latency_table_json: str
    def __init__(self, name: _Optional[str] = ..., latency_table_json: _Optional[str] = ...) -> None: ...

class SubmitLatencyTableResponse(_message.Message):
    __slots__ = ("profile_name", "profile_revision", "devices_merged", "devices_dropped")
    PROFILE_NAME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_REVISION_FIELD_NUMBER: _ClassVar[int]
    DEVICES_MERGED_FIELD_NUMBER: _ClassVar[int]
    DEVICES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    profile_name: str
    profile_revision: int
    devices_merged: int
    devices_dropped: int
    def __init__(self, profile_name: _Optional[str] = ..., profile_revision: _Optional[int] = ..., devices_merged: _Optional[int] = ..., devices_dropped: _Optional[int] = ...) -> None: ...

class GetDeviceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetDeviceResponse(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: Device
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: Device
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "parent", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    parent: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., parent: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("devices", "next_page_token")
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    next_page_token: str
    def __init__(self, devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteDeviceRequest(_message.Message):
    __slots__ = ("name", "expected_revision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    expected_revision: int
    def __init__(self, name: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class DeleteDeviceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchChangesRequest(_message.Message):
    __slots__ = ("after_cursor", "kinds", "operations", "from_head")
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    FROM_HEAD_FIELD_NUMBER: _ClassVar[int]
    after_cursor: int
    kinds: _containers.RepeatedScalarFieldContainer[ChangeKind]
    operations: _containers.RepeatedScalarFieldContainer[ChangeOperation]
    from_head: bool
    def __init__(self, after_cursor: _Optional[int] = ..., kinds: _Optional[_Iterable[_Union[ChangeKind, str]]] = ..., operations: _Optional[_Iterable[_Union[ChangeOperation, str]]] = ..., from_head: _Optional[bool] = ...) -> None: ...

class WatchChangesResponse(_message.Message):
    __slots__ = ("cursor", "kind", "operation", "id", "revision", "commit_time", "parent", "name")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    kind: ChangeKind
    operation: ChangeOperation
    id: str
    revision: int
    commit_time: _timestamp_pb2.Timestamp
    parent: str
    name: str
    def __init__(self, cursor: _Optional[int] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., operation: _Optional[_Union[ChangeOperation, str]] = ..., id: _Optional[str] = ..., revision: _Optional[int] = ..., commit_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., parent: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...
