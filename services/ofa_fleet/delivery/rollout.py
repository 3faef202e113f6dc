"""Staged rollouts, as hawkBit runs them: a new model reaches a few devices first.

When a staged fleet's profile gets a new current model, a rollout starts: the canaries
(a share of the fleet, chosen by a stable hash of each device id, so the same devices
lead every rollout) are told to run the new model while the rest keep the previous one.
The canaries' reports decide:

- promoted (everyone runs the new model) once ``needed_successes`` canaries reported the
  new model with no errors and a latency within the profile's budget;
- rolled back (everyone runs, or returns to, the previous model) once the canaries whose
  report failed (errors, or the new model measured over budget) are more than
  ``failure_threshold_percent`` of the canaries.

A rolled-back fleet stays on its previous model until the profile's model changes again.
A fleet's first model has nothing to fall back to: withholding it would leave devices
with no model at all, which is no safer, so it goes to every device at once.

Only a report made after a device became a canary counts: the canary remembers the
device's registry revision at that moment (clock-free: every report adds 1 to it).
Everything here is pure; `rollout_store` keeps it and `fleet_monitor` drives it.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ofa_fleet.carbon.cost import ZERO, EnergyCost


class RolloutState(enum.Enum):
    """Where a staged rollout stands; the value is what delivery's database stores."""

    CANARY = "canary"  # the canaries run the new model, the rest the old one
    PROMOTED = "promoted"  # the whole fleet runs the new model
    ROLLED_BACK = "rolled-back"  # too many canaries failed: the whole fleet stays on the old


@dataclass(frozen=True)
class StagedPolicy:
    """A staged fleet's figures, copied in when a rollout starts."""

    canary_percent: int
    failure_threshold_percent: int
    min_success_reports: int


@dataclass(frozen=True)
class DeviceReport:
    """What one device last told the registry (see `device_reports`).

    Attributes:
        revision: the device record's revision; it grows with every report.
        reported: False while the device has never reported.
        profiling: what its on-boot profiling drew, summed over every report.
    """

    device_id: str
    revision: int
    reported: bool = False
    sha256: str = ""
    latency_ms: float = 0.0
    errors: int = 0
    profiling: EnergyCost = ZERO


@dataclass(frozen=True)
class Rollout:
    """A fleet's rollout of ``to_sha256`` over ``from_sha256`` ("" for a first model).

    Attributes:
        canaries: device id to the device's revision when it became a canary.
    """

    fleet_name: str
    profile_name: str
    from_sha256: str
    to_sha256: str
    state: RolloutState
    policy: StagedPolicy
    canaries: Mapping[str, int]
    successes: int
    failures: int
    needed_successes: int
    started_us: int
    updated_us: int

    def model_for(self, device_id: str) -> str:
        """The sha256 this device should run now."""
        if self.state == RolloutState.PROMOTED:
            return self.to_sha256
        if self.state == RolloutState.ROLLED_BACK:
            return self.from_sha256
        return self.to_sha256 if device_id in self.canaries else self.from_sha256

    @property
    def settled_sha256(self) -> str:
        """The model the whole fleet is known to run: what a next rollout starts from."""
        return self.to_sha256 if self.state == RolloutState.PROMOTED else self.from_sha256


def start(
    fleet: str,
    profile: str,
    policy: StagedPolicy,
    new_sha256: str,
    previous: Rollout | None,
    now_us: int,
) -> Rollout:
    """The rollout of ``new_sha256``, after ``previous`` (None for the fleet's first).

    A rollout replaced half way starts from the model the rest of the fleet still runs.
    """
    baseline = previous.settled_sha256 if previous is not None else ""
    direct = not baseline or baseline == new_sha256
    return Rollout(
        fleet_name=fleet,
        profile_name=profile,
        from_sha256=baseline,
        to_sha256=new_sha256,
        state=RolloutState.PROMOTED if direct else RolloutState.CANARY,
        policy=policy,
        canaries={},
        successes=0,
        failures=0,
        needed_successes=policy.min_success_reports,
        started_us=now_us,
        updated_us=now_us,
    )


def advance(
    rollout: Rollout, devices: Sequence[DeviceReport], budget_ms: float, now_us: int
) -> Rollout:
    """The rollout after looking at the fleet's devices now; unchanged once decided."""
    if rollout.state != RolloutState.CANARY:
        return rollout
    canaries = choose_canaries(rollout, devices)
    reports = {d.device_id: d for d in devices}
    successes = failures = 0
    for device_id, since in canaries.items():
        report = reports[device_id]
        if not report.reported or report.revision <= since:
            continue
        if report.errors or (report.sha256 == rollout.to_sha256 and report.latency_ms > budget_ms):
            failures += 1
        elif report.sha256 == rollout.to_sha256 and report.latency_ms > 0:
            successes += 1
    needed = max(1, min(rollout.policy.min_success_reports, len(devices)))
    state = RolloutState.CANARY
    if failures and failures * 100 > rollout.policy.failure_threshold_percent * len(canaries):
        state = RolloutState.ROLLED_BACK
    elif successes >= needed:
        state = RolloutState.PROMOTED
    changed = (state, canaries, successes, failures, needed) != (
        rollout.state,
        rollout.canaries,
        rollout.successes,
        rollout.failures,
        rollout.needed_successes,
    )
    if not changed:
        return rollout
    return dataclasses.replace(
        rollout,
        state=state,
        canaries=canaries,
        successes=successes,
        failures=failures,
        needed_successes=needed,
        updated_us=now_us,
    )


def canary_count(fleet_size: int, policy: StagedPolicy) -> int:
    """canary_percent of the fleet, rounded up; at least 1, and at least the successes
    that promote (fewer canaries could never promote), never more than the fleet."""
    share = math.ceil(fleet_size * policy.canary_percent / 100)
    return min(fleet_size, max(1, share, policy.min_success_reports))


def choose_canaries(rollout: Rollout, devices: Sequence[DeviceReport]) -> dict[str, int]:
    """The rollout's canaries among ``devices``: those already chosen that still exist,
    topped up by hash order as the fleet grows (a fleet that had no devices yet gets its
    canaries from the first ones to enrol)."""
    present = {d.device_id: d for d in devices}
    canaries = {d: since for d, since in rollout.canaries.items() if d in present}
    wanted = canary_count(len(devices), rollout.policy)
    if len(canaries) < wanted:
        others = sorted(
            (d for d in present if d not in canaries),
            key=lambda d: rank(rollout.fleet_name, d),
        )
        for device_id in others[: wanted - len(canaries)]:
            canaries[device_id] = present[device_id].revision
    return canaries


def rank(fleet: str, device_id: str) -> str:
    """A device's stable place in its fleet's canary order."""
    return hashlib.sha256(f"{fleet}/{device_id}".encode()).hexdigest()
