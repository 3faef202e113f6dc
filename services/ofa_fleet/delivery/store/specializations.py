"""The reconciler's memory: each profile's specialization state and the feed cursor.

Kept in delivery's database, so a restarted reconciler knows which profiles are current,
which failed (and when to try again), where in the registry's change feed it was, which
model its devices measured over budget (`over_budget`) and the field latencies learnt
from them, which every later search of the profile calibrates on.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ofa_fleet.delivery.store.tables import SpecializationRow, WatchCursorRow
from ofa_fleet.storage.database import Database


class SpecializationStatus(enum.Enum):
    """Where a profile's specialization stands; the value is what the database stores."""

    CURRENT = "current"  # its model is specialized for its revision on this supernet
    PENDING = "pending"  # it needs one, and none failed yet
    FAILING = "failing"  # the last attempt failed; the next waits out its backoff
    # No subnet of the supernet fits the profile: nothing is tried again until the profile
    # or the supernet changes (retrying would only find the same).
    INFEASIBLE = "infeasible"


ERROR_LENGTH = 2000
MAX_LEARNT_REPORTS = 16


@dataclass(frozen=True)
class SpecializationState:
    profile_name: str
    profile_revision: int
    supernet_version: str
    state: SpecializationStatus
    attempts: int
    last_error: str
    next_attempt_us: int
    over_budget_sha256: str = ""
    over_budget_latency_ms: float = 0.0
    over_budget_reports: int = 0
    # (arch, measured ms) learnt from devices, oldest first.
    latency_reports: tuple[tuple[str, float], ...] = ()
    # The profile revision and supernet the last failed attempt was for (FAILING and
    # INFEASIBLE; 0 and "" where unknown, e.g. an internal error).
    failed_revision: int = 0
    failed_supernet: str = ""

    def infeasible_for(self, profile_revision: int, supernet_version: str) -> bool:
        """Whether this profile revision on this supernet is known to fit no subnet."""
        return (
            self.state is SpecializationStatus.INFEASIBLE
            and self.failed_revision == profile_revision
            and self.failed_supernet == supernet_version
        )

    def failing_for(self, profile_revision: int, supernet_version: str) -> bool:
        """Whether the last attempt failed for this revision and supernet (or for one not
        known): only then is its backoff worth waiting out; a changed profile is new."""
        return (
            self.state is SpecializationStatus.FAILING
            and self.failed_revision in (0, profile_revision)
            and self.failed_supernet in ("", supernet_version)
        )


class Specializations:
    def __init__(self, database: Database) -> None:
        self.database = database

    def get(self, profile_name: str) -> SpecializationState | None:
        with self.database.read() as s:
            row = s.get(SpecializationRow, profile_name)
            return None if row is None else _state(row)

    def all(self) -> list[SpecializationState]:
        with self.database.read() as s:
            return [_state(r) for r in s.scalars(select(SpecializationRow)).all()]

    def mark_pending(self, profile_name: str) -> None:
        with self.database.write() as s:
            row = _row(s, profile_name)
            row.state = SpecializationStatus.PENDING.value
            row.updated_us = _now_us()

    def mark_current(self, profile_name: str, revision: int, supernet_version: str) -> None:
        with self.database.write() as s:
            row = _row(s, profile_name)
            row.state, row.attempts, row.last_error = SpecializationStatus.CURRENT.value, 0, ""
            if row.profile_revision != revision:  # an edited profile may be other hardware
                row.latency_reports_json = "[]"
            row.profile_revision, row.supernet_version = revision, supernet_version
            row.next_attempt_us = 0
            row.updated_us = _now_us()

    def mark_failing(
        self,
        profile_name: str,
        error: str,
        backoff: BackoffPolicy,
        revision: int = 0,
        supernet_version: str = "",
    ) -> int:
        """Record a failed attempt (for `revision` on `supernet_version`, where known);
        returns the attempts so far (the next waits longer)."""
        with self.database.write() as s:
            row = _row(s, profile_name)
            row.state = SpecializationStatus.FAILING.value
            row.attempts += 1
            row.last_error = error[:ERROR_LENGTH]
            row.failed_revision, row.failed_supernet = revision, supernet_version
            row.updated_us = _now_us()
            row.next_attempt_us = row.updated_us + int(backoff.delay(row.attempts) * 1e6)
            return row.attempts

    def mark_infeasible(
        self, profile_name: str, revision: int, supernet_version: str, error: str
    ) -> None:
        """Record that no subnet of `supernet_version` fits revision `revision`; the
        current model, if any, stays current (what the devices run does not get worse)."""
        with self.database.write() as s:
            row = _row(s, profile_name)
            row.state = SpecializationStatus.INFEASIBLE.value
            row.attempts += 1
            row.last_error = error[:ERROR_LENGTH]
            row.failed_revision, row.failed_supernet = revision, supernet_version
            row.next_attempt_us = 0
            row.updated_us = _now_us()

    def record_over_budget(
        self, profile_name: str, sha256: str, arch: str, latency_ms: float, reports: int
    ) -> bool:
        """Remember that ``sha256`` ran over budget; False if it already was (no new ask).

        The measurement becomes a latency report for the profile's later searches (one
        per arch, the newest kept; at most `MAX_LEARNT_REPORTS`).
        """
        with self.database.write() as s:
            row = _row(s, profile_name)
            if row.over_budget_sha256 == sha256:
                return False
            row.over_budget_sha256, row.over_budget_latency_ms = sha256, latency_ms
            row.over_budget_reports = reports
            learnt = [r for r in json.loads(row.latency_reports_json or "[]") if r["arch"] != arch]
            learnt.append({"arch": arch, "measured_ms": latency_ms})
            row.latency_reports_json = json.dumps(learnt[-MAX_LEARNT_REPORTS:])
            row.updated_us = _now_us()
            return True

    def forget(self, profile_name: str) -> None:
        with self.database.write() as s:
            row = s.get(SpecializationRow, profile_name)
            if row is not None:
                s.delete(row)

    def cursor(self, source: str) -> int:
        with self.database.read() as s:
            row = s.get(WatchCursorRow, source)
            return 0 if row is None else row.cursor

    def save_cursor(self, source: str, cursor: int) -> None:
        with self.database.write() as s:
            row = s.get(WatchCursorRow, source)
            if row is None:
                s.add(WatchCursorRow(source=source, cursor=cursor))
            elif cursor > row.cursor:
                row.cursor = cursor


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential: ``base * 2**(attempt-1)`` seconds, capped; a failure never loops hot."""

    base_seconds: float = 2.0
    cap_seconds: float = 300.0

    def delay(self, attempt: int) -> float:
        return min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1))


def _row(session: Session, profile_name: str) -> SpecializationRow:
    row = session.get(SpecializationRow, profile_name)
    if row is None:
        row = SpecializationRow(
            profile_name=profile_name,
            profile_revision=0,
            supernet_version="",
            state=SpecializationStatus.PENDING.value,
            attempts=0,
            last_error="",
            next_attempt_us=0,
            updated_us=_now_us(),
            over_budget_sha256="",
            over_budget_latency_ms=0.0,
            over_budget_reports=0,
            latency_reports_json="[]",
            failed_revision=0,
            failed_supernet="",
        )
        session.add(row)
    return row


def _state(row: SpecializationRow) -> SpecializationState:
    return SpecializationState(
        row.profile_name,
        row.profile_revision,
        row.supernet_version,
        SpecializationStatus(row.state),
        row.attempts,
        row.last_error,
        row.next_attempt_us,
        row.over_budget_sha256,
        row.over_budget_latency_ms,
        row.over_budget_reports,
        tuple((r["arch"], float(r["measured_ms"])) for r in json.loads(row.latency_reports_json)),
        row.failed_revision,
        row.failed_supernet,
    )


def _now_us() -> int:
    return time.time_ns() // 1000
