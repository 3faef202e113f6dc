"""A fleet's rollout policy: how it takes new models.

The registry stores the policy and delivery enforces it; the CLI writes it. All three
validate and convert it here, so a policy means the same thing wherever it is read.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ofa_fleet.contract.fields import check_sha256
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.v1 import common_pb2, registry_pb2


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


_STRATEGIES = {
    common_pb2.ROLLOUT_STRATEGY_AUTO_LATEST: RolloutStrategy.AUTO_LATEST,
    common_pb2.ROLLOUT_STRATEGY_PINNED: RolloutStrategy.PINNED,
    common_pb2.ROLLOUT_STRATEGY_STAGED: RolloutStrategy.STAGED,
}


def rollout_from_proto(message: registry_pb2.RolloutPolicy) -> RolloutPolicy:
    if message.strategy == common_pb2.ROLLOUT_STRATEGY_UNSPECIFIED and not message.ByteSize():
        return RolloutPolicy()
    strategy = _STRATEGIES.get(message.strategy)
    if strategy is None:
        raise InvalidArgumentError(
            f"rollout.strategy {message.strategy} is not one of "
            "ROLLOUT_STRATEGY_AUTO_LATEST, ROLLOUT_STRATEGY_PINNED, ROLLOUT_STRATEGY_STAGED"
        )
    return RolloutPolicy(
        strategy=strategy,
        pinned_model_sha256=message.pinned_model_sha256,
        canary_percent=message.staged.canary_percent,
        failure_threshold_percent=message.staged.failure_threshold_percent,
        min_success_reports=message.staged.min_success_reports,
    )


def rollout_to_proto(policy: RolloutPolicy) -> registry_pb2.RolloutPolicy:
    strategy = next(k for k, v in _STRATEGIES.items() if v is policy.strategy)
    message = registry_pb2.RolloutPolicy(
        strategy=strategy, pinned_model_sha256=policy.pinned_model_sha256
    )
    if policy.strategy is RolloutStrategy.STAGED:
        message.staged.CopyFrom(
            registry_pb2.StagedRollout(
                canary_percent=policy.canary_percent,
                failure_threshold_percent=policy.failure_threshold_percent,
                min_success_reports=policy.min_success_reports,
            )
        )
    return message
