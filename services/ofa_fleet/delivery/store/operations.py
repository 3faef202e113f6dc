"""Long-running operations (AIP-151) in delivery's database.

An operator's Respecialize is an operation: it answers at once, and the caller follows it
by name. It lives in the database, not in the memory of the replica that took the call,
so that every replica can answer for it, a standby can take the call, and whichever
replica leads next finishes what the last leader left open. The reconciler ends an open
operation when an attempt that began after it succeeds (the model it made current) or
cannot succeed (the profile is gone, or no subnet fits it); a failed attempt leaves it
open, to be retried after the reconciler's backoff.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import grpc
from sqlalchemy import delete, select, update

from ofa_fleet.contract.operation_names import PREFIX
from ofa_fleet.delivery.store.tables import OperationRow
from ofa_fleet.storage.database import Database
from ofa_fleet.storage.pages import Page, check_page_size, decode_page_token, encode_page_token

# Finished operations are kept this long (the proto promises it), then pruned.
RETENTION_SECONDS = 7 * 24 * 3600.0
MESSAGE_LENGTH = 2000
REASON_LENGTH = 64


@dataclass(frozen=True)
class OperationRecord:
    name: str
    profile_name: str
    created_us: int
    ended_us: int  # 0 while it runs
    outcome_sha256: str = ""
    error_code: str = ""  # a grpc.StatusCode name
    error_message: str = ""
    error_reason: str = ""

    @property
    def done(self) -> bool:
        return self.ended_us != 0


@dataclass(frozen=True)
class OperationFilter:
    """Which operations a listing shows (None: either)."""

    profile_name: str | None = None
    done: bool | None = None

    def listing(self) -> str:
        """What a page token is bound to: a token from another filter is refused."""
        return f"operations|{self.profile_name or ''}|{self.done}"


class Operations:
    def __init__(self, database: Database) -> None:
        self.database = database

    def start(self, profile_name: str) -> OperationRecord:
        now = _now_us()
        # The time first, so names sort oldest first (listing order); then 64 random bits.
        name = f"{PREFIX}{now:016x}{secrets.token_hex(8)}"
        row = OperationRow(
            name=name,
            profile_name=profile_name,
            created_us=now,
            ended_us=0,
            outcome_sha256="",
            error_code="",
            error_message="",
            error_reason="",
        )
        with self.database.write() as s:
            s.add(row)
        return OperationRecord(name, profile_name, now, 0)

    def get(self, name: str) -> OperationRecord | None:
        with self.database.read() as s:
            row = s.get(OperationRow, name)
            return None if row is None else _record(row)

    def running(self) -> list[OperationRecord]:
        """Every operation not done, oldest first: what a new leader takes up."""
        with self.database.read() as s:
            rows = s.scalars(
                select(OperationRow).where(OperationRow.ended_us == 0).order_by(OperationRow.name)
            ).all()
            return [_record(r) for r in rows]

    def page(
        self, which: OperationFilter, page_size: int = 0, page_token: str = ""
    ) -> Page[OperationRecord]:
        size = check_page_size(page_size)
        listing = which.listing()
        after = decode_page_token(page_token, listing)
        query = select(OperationRow).where(OperationRow.name > after)
        if which.profile_name is not None:
            query = query.where(OperationRow.profile_name == which.profile_name)
        if which.done is not None:
            query = query.where(
                OperationRow.ended_us != 0 if which.done else OperationRow.ended_us == 0
            )
        with self.database.read() as s:
            rows = s.scalars(query.order_by(OperationRow.name).limit(size + 1)).all()
            records = [_record(r) for r in rows]
        token = encode_page_token(listing, records[size - 1].name) if len(records) > size else ""
        return Page(tuple(records[:size]), token)

    def open_for(self, profile_name: str) -> tuple[str, ...]:
        """The profile's open operations, by name: what an attempt beginning now answers
        (named at its start, so one started during the attempt waits for the next)."""
        with self.database.read() as s:
            query = select(OperationRow.name).where(
                OperationRow.profile_name == profile_name, OperationRow.ended_us == 0
            )
            return tuple(s.scalars(query).all())

    def succeed(self, names: tuple[str, ...], sha256: str) -> int:
        """End these operations, where still open, with the model made current; returns
        how many ended."""
        return self._end(names, outcome_sha256=sha256)

    def fail(
        self, names: tuple[str, ...], code: grpc.StatusCode, message: str, reason: str = ""
    ) -> int:
        """End these operations, where still open, with an error; returns how many ended."""
        return self._end(
            names,
            error_code=code.name,
            error_message=message[:MESSAGE_LENGTH],
            error_reason=reason[:REASON_LENGTH],
        )

    def cancel(self, name: str) -> OperationRecord | None:
        """End one operation as CANCELLED if it still runs; None if there is none."""
        with self.database.write() as s:
            row = s.get(OperationRow, name)
            if row is None:
                return None
            if row.ended_us == 0:
                row.ended_us = _now_us()
                row.error_code = grpc.StatusCode.CANCELLED.name
                row.error_message = "cancelled by an operator"
            return _record(row)

    def delete(self, name: str) -> bool:
        with self.database.write_connection() as c:
            return bool(c.execute(delete(OperationRow).where(OperationRow.name == name)).rowcount)

    def prune(self, ended_before_us: int) -> int:
        """Forget operations that ended before then (their retention passed)."""
        done = (OperationRow.ended_us != 0) & (OperationRow.ended_us < ended_before_us)
        with self.database.write_connection() as c:
            return int(c.execute(delete(OperationRow).where(done)).rowcount or 0)

    def _end(self, names: tuple[str, ...], **outcome: str) -> int:
        if not names:
            return 0
        query = update(OperationRow).where(OperationRow.name.in_(names), OperationRow.ended_us == 0)
        with self.database.write_connection() as c:
            return int(c.execute(query.values(ended_us=_now_us(), **outcome)).rowcount or 0)


def _record(row: OperationRow) -> OperationRecord:
    return OperationRecord(
        row.name,
        row.profile_name,
        row.created_us,
        row.ended_us,
        row.outcome_sha256,
        row.error_code,
        row.error_message,
        row.error_reason,
    )


def _now_us() -> int:
    return time.time_ns() // 1000
