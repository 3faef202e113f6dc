"""The staged-rollout rules, as pure functions: canaries, promotion, rollback."""

from __future__ import annotations

import dataclasses
import random

from ofa_fleet.delivery.rollout import (
    DeviceReport,
    Rollout,
    RolloutState,
    StagedPolicy,
    advance,
    canary_count,
    choose_canaries,
    start,
)

OLD, NEW = "a" * 64, "b" * 64
POLICY = StagedPolicy(canary_percent=20, failure_threshold_percent=40, min_success_reports=2)
BUDGET = 4.0


def fleet(count: int) -> list[DeviceReport]:
    return [DeviceReport(f"dev{i:04d}", revision=3) for i in range(count)]


def rollout_over(devices: list[DeviceReport], policy: StagedPolicy = POLICY) -> Rollout:
    first = start("pis", "raspberry-pi-4", policy, OLD, None, now_us=1)
    return advance(start("pis", "raspberry-pi-4", policy, NEW, first, 2), devices, BUDGET, 3)


def reported(device: DeviceReport, sha256: str, latency_ms: float, errors: int = 0):
    return dataclasses.replace(
        device,
        revision=device.revision + 1,
        reported=True,
        sha256=sha256,
        latency_ms=latency_ms,
        errors=errors,
    )


def test_canary_count_is_the_share_rounded_up_at_least_one_and_enough_to_promote():
    assert canary_count(10, POLICY) == 2
    assert canary_count(11, POLICY) == 3
    assert canary_count(3, StagedPolicy(1, 0, 1)) == 1
    assert canary_count(100, StagedPolicy(1, 0, 5)) == 5  # 1 % could never promote
    assert canary_count(2, StagedPolicy(50, 0, 5)) == 2  # never more than the fleet
    assert canary_count(0, POLICY) == 0


def test_canaries_are_chosen_by_a_stable_hash_whatever_the_order():
    devices = fleet(50)
    chosen = set(rollout_over(devices).canaries)
    shuffled = devices[:]
    random.Random(7).shuffle(shuffled)
    assert set(rollout_over(shuffled).canaries) == chosen and len(chosen) == 10
    assert chosen != set(d.device_id for d in devices[:10])  # not simply the first ids
    # A growing fleet keeps its canaries and adds more.
    grown = choose_canaries(rollout_over(devices), fleet(60))
    assert chosen <= set(grown) and len(grown) == 12


def test_a_first_model_goes_to_every_device_and_a_new_one_to_the_canaries_first():
    first = start("pis", "raspberry-pi-4", POLICY, OLD, None, now_us=1)
    assert (first.state, first.from_sha256, first.model_for("anyone")) == (
        RolloutState.PROMOTED,
        "",
        OLD,
    )
    rollout = rollout_over(fleet(10))
    assert rollout.state == RolloutState.CANARY and rollout.from_sha256 == OLD
    canary = next(iter(rollout.canaries))
    assert rollout.model_for(canary) == NEW
    others = [d.device_id for d in fleet(10) if d.device_id not in rollout.canaries]
    assert {rollout.model_for(d) for d in others} == {OLD}


def test_enough_successful_canaries_promote_the_rollout():
    devices = fleet(10)
    rollout = rollout_over(devices)
    canaries = [d for d in devices if d.device_id in rollout.canaries]
    # Reports from before a device became a canary do not count.
    stale = [reported(d, NEW, 1.0) if d in canaries else d for d in devices]
    stale = [dataclasses.replace(d, revision=3) for d in stale]
    assert advance(rollout, stale, BUDGET, 4).state == RolloutState.CANARY
    one = [d if d.device_id != canaries[0].device_id else reported(d, NEW, 1.0) for d in devices]
    half = advance(rollout, one, BUDGET, 4)
    assert (half.state, half.successes, half.needed_successes) == (RolloutState.CANARY, 1, 2)
    both = [reported(d, NEW, 1.0) if d in canaries else d for d in devices]
    promoted = advance(half, both, BUDGET, 5)
    assert (promoted.state, promoted.successes) == (RolloutState.PROMOTED, 2)
    assert {promoted.model_for(d.device_id) for d in devices} == {NEW}
    # Still on the old model, or not measured yet: not a success, not a failure.
    waiting = [reported(d, OLD, 1.0) if d in canaries else d for d in devices]
    assert advance(rollout, waiting, BUDGET, 4).state == RolloutState.CANARY


def test_failures_past_the_threshold_roll_everyone_back():
    devices = fleet(10)
    rollout = rollout_over(devices)
    canaries = [d for d in devices if d.device_id in rollout.canaries]
    failed = {canaries[0].device_id: reported(canaries[0], OLD, 1.0, errors=1)}
    one = [failed.get(d.device_id, d) for d in devices]
    back = advance(rollout, one, BUDGET, 4)  # 1 of 2 canaries: 50 % > 40 %
    assert (back.state, back.failures) == (RolloutState.ROLLED_BACK, 1)
    assert {back.model_for(d.device_id) for d in devices} == {OLD}
    assert advance(back, devices, BUDGET, 5) is back  # decided: stays so
    # Over budget on the new model is a failure too; under the threshold it waits.
    lenient = rollout_over(devices, StagedPolicy(20, 50, 2))
    slow = [
        reported(d, NEW, BUDGET * 2) if d.device_id == canaries[0].device_id else d for d in devices
    ]
    assert advance(lenient, slow, BUDGET, 4).state == RolloutState.CANARY  # 50 % is not past 50 %
    # A rollout replaced half way starts from what the rest of the fleet runs.
    newer = start("pis", "raspberry-pi-4", POLICY, "c" * 64, rollout, 6)
    assert (newer.from_sha256, newer.state, newer.canaries) == (OLD, RolloutState.CANARY, {})
    after_back = start("pis", "raspberry-pi-4", POLICY, "c" * 64, back, 6)
    assert after_back.from_sha256 == OLD
