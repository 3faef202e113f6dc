"""The reconciler's memory: each profile's specialization state and the feed cursor.

Kept in delivery's database, so a restarted reconciler knows which profiles are current,
which failed (and when to try again), and where in the registry's change feed it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ofa_fleet.delivery.tables import SpecializationRow, WatchCursorRow
from ofa_fleet.storage.database import Database

CURRENT, PENDING, FAILING = "current", "pending", "failing"
ERROR_LENGTH = 2000


@dataclass(frozen=True)
class SpecializationState:
    profile_name: str
    profile_revision: int
    supernet_version: str
    state: str
    attempts: int
    last_error: str
    next_attempt_us: int


class Ledger:
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
            row.state = PENDING
            row.updated_us = _now_us()

    def mark_current(self, profile_name: str, revision: int, supernet_version: str) -> None:
        with self.database.write() as s:
            row = _row(s, profile_name)
            row.state, row.attempts, row.last_error = CURRENT, 0, ""
            row.profile_revision, row.supernet_version = revision, supernet_version
            row.next_attempt_us = 0
            row.updated_us = _now_us()

    def mark_failing(self, profile_name: str, error: str, backoff: BackoffPolicy) -> int:
        """Record a failed attempt; returns the attempts so far (the next waits longer)."""
        with self.database.write() as s:
            row = _row(s, profile_name)
            row.state = FAILING
            row.attempts += 1
            row.last_error = error[:ERROR_LENGTH]
            row.updated_us = _now_us()
            row.next_attempt_us = row.updated_us + int(backoff.delay(row.attempts) * 1e6)
            return row.attempts

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
            state=PENDING,
            attempts=0,
            last_error="",
            next_attempt_us=0,
            updated_us=_now_us(),
        )
        session.add(row)
    return row


def _state(row: SpecializationRow) -> SpecializationState:
    return SpecializationState(
        row.profile_name,
        row.profile_revision,
        row.supernet_version,
        row.state,
        row.attempts,
        row.last_error,
        row.next_attempt_us,
    )


def _now_us() -> int:
    return time.time_ns() // 1000
