"""Each supernet's own ledger (training per phase, predictor fit, scratch reference), as
search reported it, kept in delivery's database.

Search reports its supernet's ledger in every `GetSupernet` answer; delivery keeps a copy
per version so the carbon report, and the counters Prometheus scrapes, stand while search
is down or after it moved on to another supernet (the fleet paid for the old one too).
The supernet search named most recently is the current one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from google.protobuf import json_format
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DuplicateKeyError

from ofa_fleet.carbon import activities
from ofa_fleet.carbon.convert import cost_from_proto
from ofa_fleet.carbon.cost import ZERO, EnergyCost
from ofa_fleet.contract.fields import check_text
from ofa_fleet.delivery.store.tables import SUPERNET_VERSION_LENGTH, SupernetLedgerRow
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.storage.database import Database
from ofa_fleet.v1 import common_pb2


@dataclass(frozen=True)
class StoredSupernet:
    """A supernet version and its ledger (None when its checkpoint carried none)."""

    version: str
    ledger: common_pb2.SupernetLedger | None
    seen_us: int


class SupernetLedgers:
    def __init__(self, database: Database) -> None:
        self.database = database

    def save(self, version: str, ledger: common_pb2.SupernetLedger | None) -> None:
        """Record that search serves ``version`` now, with its ledger (replacing the
        stored one: a checkpoint may gain its scratch reference later)."""
        if not version:
            raise InvalidArgumentError("supernet version is required")
        check_text(version, "supernet_version", SUPERNET_VERSION_LENGTH)
        text = "" if ledger is None else json_format.MessageToJson(ledger, indent=None)
        try:
            self._save(version, text)
        except DuplicateKeyError:  # another replica stored it first: now it updates
            self._save(version, text)

    def _save(self, version: str, text: str) -> None:
        with self.database.write() as s:
            row = s.get(SupernetLedgerRow, version, with_for_update=True)
            if row is None:
                s.add(SupernetLedgerRow(supernet_version=version, ledger_json=text, seen_us=_now()))
            else:
                row.ledger_json, row.seen_us = text, _now()

    def current(self) -> StoredSupernet | None:
        """The supernet search named most recently; None before it ever answered."""
        query = select(SupernetLedgerRow).order_by(
            SupernetLedgerRow.seen_us.desc(), SupernetLedgerRow.supernet_version
        )
        with self.database.read() as s:
            row = s.scalars(query.limit(1)).first()
            return None if row is None else _stored(row)

    def get(self, version: str) -> StoredSupernet | None:
        with self.database.read() as s:
            row = s.get(SupernetLedgerRow, version)
            return None if row is None else _stored(row)

    def activity_totals(self) -> dict[str, EnergyCost]:
        """Training and predictor fit summed over every supernet the fleet used."""
        totals = {activities.TRAINING: ZERO, activities.PREDICTOR_FIT: ZERO}
        with self.database.read() as s:
            rows = [_stored(r) for r in s.scalars(select(SupernetLedgerRow))]
        for stored in rows:
            if stored.ledger is None:
                continue
            for entry in stored.ledger.activities:
                if entry.activity in totals:
                    totals[entry.activity] += cost_from_proto(entry.cost)
        return totals


def _stored(row: SupernetLedgerRow) -> StoredSupernet:
    ledger = None
    if row.ledger_json:
        ledger = json_format.Parse(
            row.ledger_json, common_pb2.SupernetLedger(), ignore_unknown_fields=True
        )
    return StoredSupernet(row.supernet_version, ledger, row.seen_us)


def _now() -> int:
    return time.time_ns() // 1000
