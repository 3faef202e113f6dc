"""Staged rollouts in delivery's database, so a restarted replica resumes them as they
were: the same canaries, the same counts, the same decision."""

from __future__ import annotations

import json

from sqlalchemy import select

from ofa_fleet.delivery.rollout import Rollout, RolloutState, StagedPolicy
from ofa_fleet.delivery.store.tables import RolloutRow
from ofa_fleet.storage.database import Database


class RolloutStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def get(self, fleet_name: str) -> Rollout | None:
        with self.database.read() as s:
            row = s.get(RolloutRow, fleet_name)
            return None if row is None else _rollout(row)

    def for_profile(self, profile_name: str) -> list[Rollout]:
        query = (
            select(RolloutRow)
            .where(RolloutRow.profile_name == profile_name)
            .order_by(RolloutRow.fleet_name)
        )
        with self.database.read() as s:
            return [_rollout(r) for r in s.scalars(query)]

    def save(self, rollout: Rollout) -> None:
        with self.database.write() as s:
            row = s.get(RolloutRow, rollout.fleet_name)
            if row is None:
                row = RolloutRow(fleet_name=rollout.fleet_name)
                s.add(row)
            row.profile_name = rollout.profile_name
            row.from_sha256, row.to_sha256 = rollout.from_sha256, rollout.to_sha256
            row.state = rollout.state.value
            row.canary_percent = rollout.policy.canary_percent
            row.failure_threshold_percent = rollout.policy.failure_threshold_percent
            row.min_success_reports = rollout.policy.min_success_reports
            row.canaries_json = json.dumps(dict(rollout.canaries), sort_keys=True)
            row.successes, row.failures = rollout.successes, rollout.failures
            row.needed_successes = rollout.needed_successes
            row.started_us, row.updated_us = rollout.started_us, rollout.updated_us

    def delete(self, fleet_name: str) -> None:
        with self.database.write() as s:
            row = s.get(RolloutRow, fleet_name)
            if row is not None:
                s.delete(row)


def _rollout(row: RolloutRow) -> Rollout:
    return Rollout(
        fleet_name=row.fleet_name,
        profile_name=row.profile_name,
        from_sha256=row.from_sha256,
        to_sha256=row.to_sha256,
        state=RolloutState(row.state),
        policy=StagedPolicy(
            row.canary_percent, row.failure_threshold_percent, row.min_success_reports
        ),
        canaries={str(k): int(v) for k, v in json.loads(row.canaries_json).items()},
        successes=row.successes,
        failures=row.failures,
        needed_successes=row.needed_successes,
        started_us=row.started_us,
        updated_us=row.updated_us,
    )
