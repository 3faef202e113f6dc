"""The registry's records as plain values: what the store returns and the servicer converts.

No SQLAlchemy rows and no protobuf messages leave their own layer; these frozen values are
what both sides agree on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ofa_fleet.carbon.cost import ZERO, EnergyCost
from ofa_fleet.contract.fields import check_cost, check_sha256, check_text
from ofa_fleet.contract.rollout import RolloutPolicy
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.profile import HardwareProfile

MAX_STATUS_ERRORS = 16
MAX_ERROR_LENGTH = 1024


@dataclass(frozen=True)
class ProfileRecord:
    spec: HardwareProfile
    revision: int
    created_us: int
    updated_us: int

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class FleetRecord:
    name: str
    profile: str
    rollout: RolloutPolicy
    revision: int
    created_us: int
    updated_us: int


@dataclass(frozen=True)
class DeviceStatus:
    """What a device reports: its model, how fast it ran, what went wrong."""

    model_sha256: str = ""
    measured_latency_ms: float = 0.0
    onnxruntime_version: str = ""
    errors: tuple[str, ...] = ()
    reported_us: int = 0
    # What this boot's on-device profiling drew; None when not measured. Added to the
    # device's running total, not kept with the status.
    profiling_cost: EnergyCost | None = None

    def __post_init__(self) -> None:
        check_sha256(self.model_sha256, "report.model_sha256", required=False)
        if self.profiling_cost is not None:
            check_cost(self.profiling_cost, "report.profiling_cost")
        latency = self.measured_latency_ms
        if not (latency == 0.0 or 0.0 < latency < 3_600_000.0):
            raise InvalidArgumentError(
                "report.measured_latency_ms must be positive and under an hour "
                f"(0 when not measured), got {latency!r}"
            )
        check_text(self.onnxruntime_version, "report.onnxruntime_version", 64)
        if len(self.errors) > MAX_STATUS_ERRORS:
            raise InvalidArgumentError(
                f"report.errors holds {len(self.errors)} entries; at most "
                f"{MAX_STATUS_ERRORS} are kept per report, newest last"
            )
        for index, error in enumerate(self.errors):
            check_text(error.replace("\n", " "), f"report.errors[{index}]", MAX_ERROR_LENGTH)


@dataclass(frozen=True)
class DeviceRecord:
    id: str
    fleet: str
    hardware_id: str
    revision: int
    created_us: int
    last_seen_us: int | None
    status: DeviceStatus | None
    # The sum of every report's profiling_cost.
    profiling_cost_total: EnergyCost = ZERO


@dataclass(frozen=True)
class Enrolment:
    """One RegisterDevice call, its token issued up front: two calls alike in every field
    are still two enrolments (two devices), told apart by their tokens."""

    fleet: str
    hardware_id: str
    request_id: str
    token: str
    token_hash: str


class ChangeKind(enum.Enum):
    PROFILE = "profile"
    FLEET = "fleet"
    DEVICE = "device"


class ChangeOperation(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True)
class Change:
    cursor: int
    kind: ChangeKind
    operation: ChangeOperation
    entity_id: str
    parent: str
    revision: int
    committed_us: int


@dataclass(frozen=True)
class LatencySubmission:
    """What merging a device's latency table into its profile's came to."""

    profile_name: str
    profile_revision: int
    devices_merged: int
    devices_dropped: int
