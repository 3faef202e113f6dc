"""A fleet's rollout policy: how it takes new models.

The registry stores the policy and delivery enforces it; the CLI writes it. All three
validate and convert it here, so a policy means the same thing wherever it is read.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ofa_fleet.contract.fields import check_sha256
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.v1 import registry_pb2


class RolloutStrategy(enum.Enum):
    AUTO_LATEST = "auto-latest"
    PINNED = "pinned"
    STAGED = "staged"


@dataclass(frozen=True)
class RolloutPolicy:
    """How a fleet takes new models; delivery enforces it, the registry stores it."""

    strategy: RolloutStrategy = RolloutStrategy.AUTO_LATEST
    pinned_model_sha256: str = ""
    canary_percent: int = 0
    failure_threshold_percent: int = 0
    min_success_reports: int = 0

    def __post_init__(self) -> None:
        where = "rollout"
        if self.strategy is RolloutStrategy.PINNED:
            check_sha256(self.pinned_model_sha256, f"{where}.pinned_model_sha256", required=True)
        elif self.pinned_model_sha256:
            raise InvalidArgumentError(
                f"{where}.pinned_model_sha256 is set but the strategy is "
                f"{self.strategy.value}; it applies only to the pinned strategy"
            )
        if self.strategy is RolloutStrategy.STAGED:
            if not 1 <= self.canary_percent <= 100:
                raise InvalidArgumentError(
                    f"{where}.staged.canary_percent must be 1-100, got {self.canary_percent}"
                )
            if not 0 <= self.failure_threshold_percent <= 100:
                raise InvalidArgumentError(
                    f"{where}.staged.failure_threshold_percent must be 0-100, "
                    f"got {self.failure_threshold_percent}"
                )
            if self.min_success_reports < 1:
                raise InvalidArgumentError(
                    f"{where}.staged.min_success_reports must be at least 1, "
                    f"got {self.min_success_reports}"
                )
        elif self.canary_percent or self.failure_threshold_percent or self.min_success_reports:
            raise InvalidArgumentError(
                f"{where}.staged is set but the strategy is {self.strategy.value}; "
                "it applies only to the staged strategy"
            )

    def to_dict(self) -> dict[str, object]:
        return {
            "strategy": self.strategy.value,
            "pinned_model_sha256": self.pinned_model_sha256,
            "canary_percent": self.canary_percent,
            "failure_threshold_percent": self.failure_threshold_percent,
            "min_success_reports": self.min_success_reports,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> RolloutPolicy:
        return cls(
            strategy=RolloutStrategy(data["strategy"]),
            pinned_model_sha256=str(data["pinned_model_sha256"]),
            canary_percent=int(str(data["canary_percent"])),
            failure_threshold_percent=int(str(data["failure_threshold_percent"])),
            min_success_reports=int(str(data["min_success_reports"])),
        )


# The oneof's field for each strategy; no field set is auto-latest.
_FIELDS = {
    RolloutStrategy.AUTO_LATEST: "auto_latest",
    RolloutStrategy.PINNED: "pinned",
    RolloutStrategy.STAGED: "staged",
}
_STRATEGIES = {field: strategy for strategy, field in _FIELDS.items()}


def strategy_of(message: registry_pb2.RolloutPolicy) -> RolloutStrategy:
    """The strategy a policy message names (auto-latest when it names none)."""
    field = message.WhichOneof("policy")
    return RolloutStrategy.AUTO_LATEST if field is None else _STRATEGIES[field]


def pinned_sha256(message: registry_pb2.RolloutPolicy) -> str:
    """The model a pinned policy names; "" for any other policy."""
    return message.pinned.model_sha256 if message.HasField("pinned") else ""


def rollout_from_proto(message: registry_pb2.RolloutPolicy) -> RolloutPolicy:
    strategy = strategy_of(message)
    return RolloutPolicy(
        strategy=strategy,
        pinned_model_sha256=pinned_sha256(message),
        canary_percent=message.staged.canary_percent,
        failure_threshold_percent=message.staged.failure_threshold_percent,
        min_success_reports=message.staged.min_success_reports,
    )


def rollout_to_proto(policy: RolloutPolicy) -> registry_pb2.RolloutPolicy:
    message = registry_pb2.RolloutPolicy()
    if policy.strategy is RolloutStrategy.AUTO_LATEST:
        message.auto_latest.SetInParent()
    elif policy.strategy is RolloutStrategy.PINNED:
        message.pinned.model_sha256 = policy.pinned_model_sha256
    else:
        message.staged.CopyFrom(
            registry_pb2.StagedRollout(
                canary_percent=policy.canary_percent,
                failure_threshold_percent=policy.failure_threshold_percent,
                min_success_reports=policy.min_success_reports,
            )
        )
    return message
