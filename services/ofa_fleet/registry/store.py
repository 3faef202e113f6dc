"""`RegistryStore`: every registry operation as one database transaction, no gRPC inside.

Each write also appends its change to the change feed in the same transaction, so a
watcher sees exactly the changes that committed, in commit order, and nothing that rolled
back. Uniqueness is checked before inserting (for a clear message) and again by the
database (for the race between two replicas), both ending in `AlreadyExistsError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.contract import tokens
from ofa_fleet.contract.fields import (
    check_device_id,
    check_name,
    check_request_id,
    check_text,
)
from ofa_fleet.contract.resource_names import device_name
from ofa_fleet.contract.revisions import check_revision
from ofa_fleet.contract.rollout import RolloutPolicy, RolloutStrategy
from ofa_fleet.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    OfaFleetError,
)
from ofa_fleet.hardware.latency_merge import merge_tables
from ofa_fleet.hardware.latency_table import LatencyTable
from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.registry.device_filter import compile_filter, filter_key
from ofa_fleet.registry.records import (
    Change,
    ChangeKind,
    ChangeOperation,
    DeviceRecord,
    DeviceStatus,
    Enrolment,
    FleetRecord,
    LatencySubmission,
    ProfileRecord,
)
from ofa_fleet.registry.tables import (
    ChangeCounterRow,
    ChangeRow,
    DeviceLatencyTableRow,
    DeviceRow,
    FleetRow,
    ProfileRow,
)
from ofa_fleet.storage.database import Database
from ofa_fleet.storage.pages import (
    Page,
    check_page_size,
    decode_page_token,
    encode_page_token,
)

MAX_HARDWARE_ID_LENGTH = 128
# How long after an enrolment a retry with its request id is answered with the same device:
# long enough for a device's retries, short enough that an old id is not a way in.
ENROL_RETRY_WINDOW_US = 10 * 60 * 1_000_000
Row = TypeVar("Row")
Record = TypeVar("Record")
NAMES_SHOWN_IN_ERRORS = 10
# Most bytes of records in one listing page (clients accept 4 MiB answers by default).
MAX_PAGE_BYTES = 2 * 1024 * 1024
# The newest device tables one merge reads: enough for a robust median, bounded work.
MAX_TABLES_MERGED = 101


def now_us() -> int:
    return time.time_ns() // 1000


class RegistryStore:
    """The registry's core; the servicer, the CLI's tests and benchmarks all call this."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- profiles -------------------------------------------------------------------------

    def create_profile(self, spec: HardwareProfile) -> ProfileRecord:
        name = check_name(spec.name, "profile.name")
        now = now_us()
        with _unique(f"profile {name!r} already exists"), self.database.write() as s:
            if s.get(ProfileRow, name) is not None:
                raise AlreadyExistsError(f"profile {name!r} already exists")
            row = ProfileRow(
                name=name, spec_json=_spec_json(spec), revision=1, created_us=now, updated_us=now
            )
            s.add(row)
            s.flush()
            _record_change(s, ChangeKind.PROFILE, ChangeOperation.CREATED, name, "", 1)
            return _profile(row)

    def get_profile(self, name: str) -> ProfileRecord:
        check_name(name, "name")
        with self.database.read() as s:
            return _profile(_profile_row(s, name))

    def list_profiles(self, page_size: int = 0, page_token: str = "") -> Page[ProfileRecord]:
        # A page is cut short by bytes too: profiles with large latency tables must not make
        # one answer larger than a client accepts (the token resumes after the last shown).
        return self._page(
            select(ProfileRow),
            ProfileRow.name,
            "profiles",
            page_size,
            page_token,
            _profile,
            weight=lambda row: len(row.spec_json),
        )

    def update_profile(
        self, spec: HardwareProfile, expected_revision: int | None = None
    ) -> ProfileRecord:
        name = check_name(spec.name, "profile.name")
        with self.database.write() as s:
            row = _profile_row(s, name)
            check_revision("profile", name, row.revision, expected_revision)
            spec = _with_devices_table(s, spec)
            content = _spec_json(spec)
            if row.spec_json == content:  # a revision would make every model stale for nothing
                return _profile(row)
            row.spec_json = content
            row.revision += 1
            row.updated_us = now_us()
            s.flush()
            _record_change(s, ChangeKind.PROFILE, ChangeOperation.UPDATED, name, "", row.revision)
            return _profile(row)

    def delete_profile(self, name: str, expected_revision: int | None = None) -> None:
        check_name(name, "name")
        with self.database.write() as s:
            row = _profile_row(s, name)
            check_revision("profile", name, row.revision, expected_revision)
            users = s.scalars(
                select(FleetRow.name)
                .where(FleetRow.profile_name == name)
                .order_by(FleetRow.name)
                .limit(NAMES_SHOWN_IN_ERRORS + 1)
            ).all()
            if users:
                raise FailedPreconditionError(
                    f"profile {name!r} is used by fleet(s) {_listed(users)}; delete those "
                    "fleets or move them to another profile first (ofa-fleet fleets update "
                    "FLEET --profile OTHER)",
                    reason="PROFILE_IN_USE",
                    facts={"fleets": ",".join(users[:NAMES_SHOWN_IN_ERRORS])},
                )
            s.delete(row)
            _record_change(s, ChangeKind.PROFILE, ChangeOperation.DELETED, name, "", row.revision)

    # -- fleets ---------------------------------------------------------------------------

    def create_fleet(
        self, name: str, profile: str, rollout: RolloutPolicy
    ) -> tuple[FleetRecord, str]:
        """The new fleet and its enrolment token (the only time the token exists in clear)."""
        check_name(name, "name")
        check_name(profile, "profile")
        token, token_hash = tokens.issue(tokens.ENROLMENT_PREFIX)
        now = now_us()
        with _unique(f"fleet {name!r} already exists"), self.database.write() as s:
            if s.get(FleetRow, name) is not None:
                raise AlreadyExistsError(f"fleet {name!r} already exists")
            if s.get(ProfileRow, profile) is None:
                raise NotFoundError(
                    f"profile {profile!r} does not exist; create it before its fleet"
                )
            row = FleetRow(
                name=name,
                profile_name=profile,
                rollout_json=json.dumps(rollout.to_dict()),
                token_hash=token_hash,
                revision=1,
                created_us=now,
                updated_us=now,
            )
            s.add(row)
            s.flush()
            _record_change(s, ChangeKind.FLEET, ChangeOperation.CREATED, name, profile, 1)
            return _fleet(row), token

    def get_fleet(self, name: str) -> FleetRecord:
        check_name(name, "name")
        with self.database.read() as s:
            return _fleet(_fleet_row(s, name))

    def list_fleets(self, page_size: int = 0, page_token: str = "") -> Page[FleetRecord]:
        return self._page(select(FleetRow), FleetRow.name, "fleets", page_size, page_token, _fleet)

    def update_fleet(
        self,
        name: str,
        profile: str | None = None,
        rollout: RolloutPolicy | None = None,
        expected_revision: int | None = None,
    ) -> FleetRecord:
        """Move the fleet to another profile, or replace its rollout policy (None keeps
        what is stored); its watchers (delivery) give its devices what the new ones say."""
        check_name(name, "fleet.name")
        if profile is not None:
            check_name(profile, "fleet.profile")
        with self.database.write() as s:
            row = _fleet_row(s, name)
            check_revision("fleet", name, row.revision, expected_revision)
            new_profile = row.profile_name if profile is None else profile
            content = row.rollout_json if rollout is None else json.dumps(rollout.to_dict())
            if (new_profile, content) == (row.profile_name, row.rollout_json):
                return _fleet(row)
            if new_profile != row.profile_name:
                _check_profile_move(s, row, new_profile, content)
            row.profile_name = new_profile
            row.rollout_json = content
            row.revision += 1
            row.updated_us = now_us()
            s.flush()
            _record_change(
                s, ChangeKind.FLEET, ChangeOperation.UPDATED, name, row.profile_name, row.revision
            )
            return _fleet(row)

    def delete_fleet(self, name: str, expected_revision: int | None = None) -> None:
        check_name(name, "name")
        with self.database.write() as s:
            row = _fleet_row(s, name)
            check_revision("fleet", name, row.revision, expected_revision)
            devices = s.scalar(
                select(func.count()).select_from(DeviceRow).where(DeviceRow.fleet_name == name)
            )
            if devices:
                raise FailedPreconditionError(
                    f"fleet {name!r} still has {devices} enrolled device(s); delete them "
                    "first (ofa-fleet devices delete --fleet NAME --all)",
                    reason="FLEET_HAS_DEVICES",
                    facts={"devices": str(devices)},
                )
            s.delete(row)
            _record_change(
                s, ChangeKind.FLEET, ChangeOperation.DELETED, name, row.profile_name, row.revision
            )

    def fleet_for_enrolment_token(self, token: str) -> str | None:
        with self.database.read() as s:
            return s.scalar(
                select(FleetRow.name).where(FleetRow.token_hash == tokens.digest(token))
            )

    # -- devices --------------------------------------------------------------------------

    def register_device(
        self, fleet: str, hardware_id: str, request_id: str = ""
    ) -> tuple[DeviceRecord, str]:
        """A new device of `fleet` and its device token (shown to the device only now)."""
        with self.database.write_connection() as c:
            return self.register_device_in(c, fleet, hardware_id, request_id)

    def heartbeat(self, device_id: str) -> int:
        """Record that the device is alive; not a change (watchers are not woken for it)."""
        with self.database.write_connection() as c:
            return self.heartbeat_in(c, device_id)

    @staticmethod
    def register_device_in(
        c: Connection, fleet: str, hardware_id: str, request_id: str = ""
    ) -> tuple[DeviceRecord, str]:
        """`register_device` inside a transaction the caller owns (see `write_batcher`)."""
        token, token_hash = tokens.issue(tokens.DEVICE_PREFIX)
        enrolment = Enrolment(fleet, hardware_id, request_id, token, token_hash)
        outcome = RegistryStore.register_devices_in(c, [enrolment])[enrolment]
        if isinstance(outcome, OfaFleetError):
            raise outcome
        return outcome

    @staticmethod
    def register_devices_in(
        c: Connection, enrolments: Sequence[Enrolment]
    ) -> dict[Enrolment, tuple[DeviceRecord, str] | OfaFleetError]:
        """Each enrolment's new device and token, or its error, in a few statements for
        the whole lot: a booting fleet enrols by the hundred, and five statements and a
        savepoint per device were most of RegisterDevice's cost.

        Written with plain statements rather than the ORM, which would cost several times
        more. A retry with an enrolment's ``request_id`` gets the same device back, also
        within one batch (see `_retry_of`).
        """
        outcomes: dict[Enrolment, tuple[DeviceRecord, str] | OfaFleetError] = {}
        valid = _checked(enrolments, _check_enrolment, outcomes)
        if not valid:
            return outcomes
        now = now_us()
        named = {e.fleet for e in valid}
        fleets = set(c.scalars(select(FleetRow.name).where(FleetRow.name.in_(named))))
        enrolled = _enrolled_by_request(c, {e.request_id for e in valid if e.request_id})
        new_rows: dict[str, dict[str, object]] = {}  # by device id, in enrolment order
        new_tokens: dict[str, str] = {}  # token digests of devices enrolled again
        for enrolment in valid:
            if enrolment.fleet not in fleets:
                outcomes[enrolment] = NotFoundError(f"fleet {enrolment.fleet!r} does not exist")
                continue
            key = (enrolment.fleet, enrolment.request_id)
            earlier = enrolled.get(key) if enrolment.request_id else None
            if earlier is not None:
                try:
                    _retry_of(earlier, enrolment, now)
                except OfaFleetError as error:
                    outcomes[enrolment] = error
                    continue
                if earlier.id in new_rows:  # enrolled earlier in this very batch
                    new_rows[earlier.id]["token_hash"] = enrolment.token_hash
                else:
                    new_tokens[earlier.id] = enrolment.token_hash
                outcomes[enrolment] = (earlier.record(enrolment.fleet), enrolment.token)
                continue
            device = _Enrolled(tokens.new_device_id(), enrolment.hardware_id, 1, now, now)
            new_rows[device.id] = {
                "id": device.id,
                "fleet_name": enrolment.fleet,
                "hardware_id": enrolment.hardware_id,
                "token_hash": enrolment.token_hash,
                "revision": 1,
                "created_us": now,
                "last_seen_us": now,
                "enrol_request_id": enrolment.request_id or None,
            }
            if enrolment.request_id:
                enrolled[key] = device
            outcomes[enrolment] = (device.record(enrolment.fleet), enrolment.token)
        if new_rows:
            rows = list(new_rows.values())
            c.execute(insert(DeviceRow), rows)
            created = [(str(r["id"]), str(r["fleet_name"]), 1) for r in rows]
            _record_changes(c, ChangeKind.DEVICE, ChangeOperation.CREATED, created)
        for device_id, token_hash in new_tokens.items():
            c.execute(
                update(DeviceRow).where(DeviceRow.id == device_id).values(token_hash=token_hash)
            )
        return outcomes

    @staticmethod
    def heartbeat_in(c: Connection, device_id: str) -> int:
        outcome = RegistryStore.heartbeats_in(c, [device_id])[device_id]
        if isinstance(outcome, OfaFleetError):
            raise outcome
        return outcome

    @staticmethod
    def heartbeats_in(c: Connection, device_ids: Sequence[str]) -> dict[str, int | OfaFleetError]:
        """Every device in `device_ids` seen now, in one statement: a booting fleet's
        heartbeats arrive by the hundred, and one UPDATE each (in a savepoint each) was
        most of their cost. Each id's outcome: the time it was seen, or its error."""
        outcomes: dict[str, int | OfaFleetError] = {}
        valid = _checked(device_ids, check_device_id, outcomes)
        if not valid:
            return outcomes
        now = now_us()
        seen = set(
            c.scalars(
                update(DeviceRow)
                .where(DeviceRow.id.in_(valid))
                .values(last_seen_us=now)
                .returning(DeviceRow.id)
            )
        )
        for device_id in valid:
            outcomes[device_id] = (
                now if device_id in seen else NotFoundError(f"device {device_id!r} does not exist")
            )
        return outcomes

    def report_status(
        self, device_id: str, status: DeviceStatus, request_id: str = ""
    ) -> DeviceRecord:
        """Store the device's report; a retry of the last report applied (same
        ``request_id``) is answered with the device as it is, its cost not added again."""
        check_device_id(device_id)
        check_request_id(request_id)
        now = now_us()
        with self.database.write() as s:
            row = _device_row(s, device_id)
            if request_id and row.report_request_id == request_id:
                return _device(row)
            row.report_request_id = request_id or None
            if _repeats_last_report(row, status):
                # A retried or periodic report that says nothing new: the device was seen,
                # and nothing else is written (no revision, no change for watchers).
                row.last_seen_us = now
                return _device(row)
            row.model_sha256 = status.model_sha256
            row.measured_latency_ms = status.measured_latency_ms
            row.onnxruntime_version = status.onnxruntime_version
            row.errors_json = json.dumps(list(status.errors))
            row.reported_us = now
            cost = status.profiling_cost
            if cost is not None:
                # Added in SQL, so two reports committing together both count.
                row.profiling_cpu_seconds = DeviceRow.profiling_cpu_seconds + cost.cpu_seconds
                row.profiling_joules = DeviceRow.profiling_joules + cost.joules
                row.profiling_co2e_grams = DeviceRow.profiling_co2e_grams + cost.co2e_grams
            row.last_seen_us = now
            row.revision += 1
            s.flush()
            _record_change(
                s, ChangeKind.DEVICE, ChangeOperation.UPDATED, row.id, row.fleet_name, row.revision
            )
            return _device(row)

    def submit_latency_table(self, device_id: str, table: LatencyTable) -> LatencySubmission:
        """Keep the device's own table and make its profile's table the median of its
        devices' tables for that space and runtime setting (see `latency_merge`)."""
        check_device_id(device_id)
        if table.devices != 1:
            raise InvalidArgumentError(
                f"latency_table_json is a merge of {table.devices} devices' tables; a device "
                "submits the table it measured itself",
                field="latency_table_json",
            )
        with self.database.write() as s:
            device = _device_row(s, device_id)
            # The profile's row is locked before the tables are read: two devices
            # submitting at once then merge one after the other, the second seeing the
            # first's table (PostgreSQL; SQLite runs one writer at a time anyway).
            profile_row = _profile_row(
                s, _fleet_row(s, device.fleet_name).profile_name, for_update=True
            )
            spec = _profile(profile_row).spec
            _check_measured_for(spec, table)
            row = s.get(DeviceLatencyTableRow, device_id)
            if row is None:
                row = DeviceLatencyTableRow(device_id=device_id)
                s.add(row)
            row.space_fingerprint = table.space_fingerprint
            row.table_json = json.dumps(table.to_dict(), separators=(",", ":"))
            row.submitted_us = now_us()
            s.flush()
            merged = merge_tables(_profile_tables(s, spec.name, table))
            content = _spec_json(dataclasses.replace(spec, latency_table=merged.table))
            if content != profile_row.spec_json:
                profile_row.spec_json = content
                profile_row.revision += 1
                profile_row.updated_us = now_us()
                s.flush()
                _record_change(
                    s,
                    ChangeKind.PROFILE,
                    ChangeOperation.UPDATED,
                    spec.name,
                    "",
                    profile_row.revision,
                )
            return LatencySubmission(
                spec.name, profile_row.revision, merged.devices, merged.dropped
            )

    def get_device(self, device_id: str) -> DeviceRecord:
        check_device_id(device_id)
        with self.database.read() as s:
            return _device(_device_row(s, device_id))

    def list_devices(
        self, page_size: int = 0, page_token: str = "", fleet: str = "", filter: str = ""
    ) -> Page[DeviceRecord]:
        """Devices by id, of one fleet or all, those matching ``filter`` (see
        `device_filter`) only."""
        condition = compile_filter(filter)
        if fleet:
            check_name(fleet, "fleet")
            with self.database.read() as s:
                if s.get(FleetRow, fleet) is None:
                    raise NotFoundError(f"fleet {fleet!r} does not exist")
        query = select(DeviceRow).where(condition)
        if fleet:
            query = query.where(DeviceRow.fleet_name == fleet)
        key = filter_key(filter)
        listing = f"devices/{fleet}" + (f"?{key}" if key else "")
        return self._page(query, DeviceRow.id, listing, page_size, page_token, _device)

    def device_counts(self) -> dict[str, int]:
        """Enrolled devices per fleet (fleets without devices are absent)."""
        query = select(DeviceRow.fleet_name, func.count()).group_by(DeviceRow.fleet_name)
        with self.database.read() as s:
            return {fleet: int(count) for fleet, count in s.execute(query)}

    def delete_device(self, device_id: str, expected_revision: int | None = None) -> None:
        check_device_id(device_id)
        with self.database.write() as s:
            row = _device_row(s, device_id)
            check_revision("device", device_id, row.revision, expected_revision)
            s.delete(row)
            _record_change(
                s, ChangeKind.DEVICE, ChangeOperation.DELETED, row.id, row.fleet_name, row.revision
            )

    def _page(
        self,
        query: Select[Row],
        key: InstrumentedAttribute[str],
        listing: str,
        page_size: int,
        page_token: str,
        to_record: Callable[[Row], Record],
        weight: Callable[[Row], int] | None = None,
    ) -> Page[Record]:
        """One page of `query` ordered by `key`; the token names the last key shown. With
        `weight`, the page also ends before its rows weigh more than `MAX_PAGE_BYTES`
        (never before its first row)."""
        size = check_page_size(page_size)
        after = decode_page_token(page_token, listing)
        query = query.order_by(key).limit(size + 1)
        if after:
            query = query.where(key > after)
        with self.database.read() as s:
            rows = s.scalars(query).all()
        shown = rows[:size]
        if weight is not None:
            total = 0
            for index, row in enumerate(shown):
                total += weight(row)
                if index and total > MAX_PAGE_BYTES:
                    shown = shown[:index]
                    break
        more = len(rows) > len(shown)
        token = encode_page_token(listing, getattr(shown[-1], key.key)) if more else ""
        return Page(tuple(to_record(r) for r in shown), token)

    def device_for_token(self, token: str) -> str | None:
        """The name of the device this token is for (fleets/{fleet}/devices/{id})."""
        with self.database.read() as s:
            row = s.execute(
                select(DeviceRow.fleet_name, DeviceRow.id).where(
                    DeviceRow.token_hash == tokens.digest(token)
                )
            ).first()
            return None if row is None else device_name(row.fleet_name, row.id)

    # -- change feed ----------------------------------------------------------------------

    def changes_after(
        self,
        cursor: int,
        limit: int = 500,
        up_to: int | None = None,
        kinds: frozenset[ChangeKind] = frozenset(),
        operations: frozenset[ChangeOperation] = frozenset(),
    ) -> list[Change]:
        """Changes after `cursor` (and at most `up_to`), oldest first; only of `kinds` and
        `operations` where any are given."""
        query = select(ChangeRow).where(ChangeRow.cursor > cursor)
        if up_to is not None:
            query = query.where(ChangeRow.cursor <= up_to)
        if kinds:
            query = query.where(ChangeRow.kind.in_(sorted(k.value for k in kinds)))
        if operations:
            query = query.where(ChangeRow.operation.in_(sorted(o.value for o in operations)))
        with self.database.read() as s:
            rows = s.scalars(query.order_by(ChangeRow.cursor).limit(limit)).all()
        return [_change(r) for r in rows]

    def first_cursor(self) -> int:
        """The oldest change held; the next cursor to be handed out when none is."""
        with self.database.read() as s:
            oldest = s.scalar(select(func.min(ChangeRow.cursor)))
        return int(oldest) if oldest is not None else self.last_cursor() + 1

    def prune_changes(self, committed_before_us: int) -> int:
        """Forget changes committed before then; how many. The cursor counter is kept, so
        cursors are never handed out twice."""
        old = ChangeRow.committed_us < committed_before_us
        with self.database.write_connection() as c:
            return int(c.execute(delete(ChangeRow).where(old)).rowcount or 0)

    def last_cursor(self) -> int:
        with self.database.read() as s:
            return int(
                s.scalar(select(ChangeCounterRow.value).where(ChangeCounterRow.id == 1)) or 0
            )


@contextlib.contextmanager
def _unique(message: str) -> Iterator[None]:
    """Turns the database's unique-key error (a concurrent insert won) into ALREADY_EXISTS."""
    try:
        yield
    except IntegrityError as error:
        raise AlreadyExistsError(message) from error


def _record_changes(
    c: Session | Connection,
    kind: ChangeKind,
    operation: ChangeOperation,
    entities: Sequence[tuple[str, str, int]],
) -> None:
    """A change for each of `entities` (entity id, parent, revision): one bump of the
    change counter for them all, then their rows with the cursors it reserved, in order."""
    last = c.execute(
        update(ChangeCounterRow)
        .where(ChangeCounterRow.id == 1)
        .values(value=ChangeCounterRow.value + len(entities))
        .returning(ChangeCounterRow.value)
    ).scalar_one()
    committed = now_us()
    c.execute(
        insert(ChangeRow),
        [
            {
                "cursor": last - len(entities) + 1 + i,
                "kind": kind.value,
                "operation": operation.value,
                "entity_id": entity_id,
                "parent": parent,
                "revision": revision,
                "committed_us": committed,
            }
            for i, (entity_id, parent, revision) in enumerate(entities)
        ],
    )


def _record_change(
    s: Session | Connection,
    kind: ChangeKind,
    operation: ChangeOperation,
    entity_id: str,
    parent: str,
    revision: int,
) -> None:
    _record_changes(s, kind, operation, [(entity_id, parent, revision)])


def _check_measured_for(spec: HardwareProfile, table: LatencyTable) -> None:
    """Only a profile that asks its devices takes their tables, and only tables measured
    the way its devices run their models."""
    if not spec.measure_on_devices:
        raise FailedPreconditionError(
            f"profile {spec.name!r} does not ask its devices for a latency table (set "
            "measure_on_devices in the profile to have them measure one)",
            reason="LATENCY_TABLE_NOT_ASKED",
        )
    runtime = spec.runtime
    measured = (table.threads, table.execution_provider, table.graph_optimization)
    runs = (runtime.threads, runtime.execution_provider, runtime.graph_optimization)
    if measured != runs:
        raise InvalidArgumentError(
            f"latency table measured with {table.threads} thread(s) on "
            f"{table.execution_provider}, graph optimization {table.graph_optimization!r}; "
            f"profile {spec.name!r} runs its model with {runtime.threads} on "
            f"{runtime.execution_provider}, graph optimization {runtime.graph_optimization!r}",
            field="latency_table_json",
        )


def _with_devices_table(s: Session, spec: HardwareProfile) -> HardwareProfile:
    """The profile as an update without a latency table leaves it: if it asks its devices,
    with the median of the tables they sent for the newest space measured at the runtime
    it names. Each device sends its table once, so an update that dropped it (a profile
    file has none) would leave the profile without one for good."""
    if not spec.measure_on_devices or spec.latency_table is not None:
        return spec
    runtime = spec.runtime
    runs = (runtime.threads, runtime.execution_provider, runtime.graph_optimization)
    rows = s.scalars(
        select(DeviceLatencyTableRow.table_json)
        .join(DeviceRow, DeviceRow.id == DeviceLatencyTableRow.device_id)
        .join(FleetRow, FleetRow.name == DeviceRow.fleet_name)
        .where(FleetRow.profile_name == spec.name)
        .order_by(DeviceLatencyTableRow.submitted_us.desc(), DeviceLatencyTableRow.device_id)
        .limit(MAX_TABLES_MERGED)
    ).all()
    for text in rows:
        newest = LatencyTable.from_dict(json.loads(text))
        if (newest.threads, newest.execution_provider, newest.graph_optimization) == runs:
            merged = merge_tables(_profile_tables(s, spec.name, newest))
            return dataclasses.replace(spec, latency_table=merged.table)
    return spec


def _profile_tables(s: Session, profile: str, like: LatencyTable) -> list[LatencyTable]:
    """The newest tables the profile's devices measured for ``like``'s space and setting."""
    rows = s.scalars(
        select(DeviceLatencyTableRow.table_json)
        .join(DeviceRow, DeviceRow.id == DeviceLatencyTableRow.device_id)
        .join(FleetRow, FleetRow.name == DeviceRow.fleet_name)
        .where(
            FleetRow.profile_name == profile,
            DeviceLatencyTableRow.space_fingerprint == like.space_fingerprint,
        )
        .order_by(DeviceLatencyTableRow.submitted_us.desc(), DeviceLatencyTableRow.device_id)
        .limit(MAX_TABLES_MERGED)
    ).all()
    tables = [LatencyTable.from_dict(json.loads(text)) for text in rows]
    return [t for t in tables if t.setting == like.setting]


def _spec_json(spec: HardwareProfile) -> str:
    return json.dumps(spec.to_dict(), separators=(",", ":"), allow_nan=False)


def _profile_row(s: Session, name: str, for_update: bool = False) -> ProfileRow:
    row = s.get(ProfileRow, name, with_for_update=for_update)
    if row is None:
        raise NotFoundError(f"profile {name!r} does not exist")
    return row


def _fleet_row(s: Session, name: str) -> FleetRow:
    row = s.get(FleetRow, name)
    if row is None:
        raise NotFoundError(f"fleet {name!r} does not exist")
    return row


def _check_profile_move(s: Session, row: FleetRow, profile: str, rollout_json: str) -> None:
    """A fleet moves only to a profile that exists, and never while pinned: the pin names
    a model of its old profile, which its devices would go on running as the new one's."""
    if s.get(ProfileRow, profile) is None:
        raise NotFoundError(
            f"profile {profile!r} does not exist; create it before moving fleet {row.name!r} to it",
            field="fleet.profile",
        )
    if RolloutPolicy.from_dict(json.loads(rollout_json)).strategy is RolloutStrategy.PINNED:
        raise FailedPreconditionError(
            f"fleet {row.name!r} is pinned to a model of profile {row.profile_name!r}; "
            f"give it another rollout in the same update to move it to {profile!r}",
            reason="FLEET_PINNED",
            facts={"profile": row.profile_name},
        )


def _device_row(s: Session, device_id: str) -> DeviceRow:
    row = s.get(DeviceRow, device_id)
    if row is None:
        raise NotFoundError(f"device {device_id!r} does not exist")
    return row


def _profile(row: ProfileRow) -> ProfileRecord:
    return ProfileRecord(
        spec=HardwareProfile.from_dict(json.loads(row.spec_json)),
        revision=row.revision,
        created_us=row.created_us,
        updated_us=row.updated_us,
    )


def _fleet(row: FleetRow) -> FleetRecord:
    return FleetRecord(
        name=row.name,
        profile=row.profile_name,
        rollout=RolloutPolicy.from_dict(json.loads(row.rollout_json)),
        revision=row.revision,
        created_us=row.created_us,
        updated_us=row.updated_us,
    )


Item = TypeVar("Item")


def _checked(
    items: Sequence[Item], check: Callable[[Item], object], failed: dict[Item, Any]
) -> list[Item]:
    """The items that pass `check`, in order; each that fails goes into `failed` with its
    error, so that one bad item of a batch fails alone."""
    passed = []
    for item in items:
        try:
            check(item)
        except OfaFleetError as error:
            failed[item] = error
        else:
            passed.append(item)
    return passed


def _check_enrolment(enrolment: Enrolment) -> None:
    check_text(enrolment.hardware_id, "hardware_id", MAX_HARDWARE_ID_LENGTH)
    check_request_id(enrolment.request_id)


@dataclasses.dataclass(frozen=True)
class _Enrolled:
    """What a retry of an enrolment needs to know of the device it made."""

    id: str
    hardware_id: str
    revision: int
    created_us: int
    last_seen_us: int | None

    def record(self, fleet: str) -> DeviceRecord:
        return DeviceRecord(
            self.id,
            fleet,
            self.hardware_id,
            self.revision,
            self.created_us,
            self.last_seen_us,
            None,
        )


def _enrolled_by_request(c: Connection, request_ids: set[str]) -> dict[tuple[str, str], _Enrolled]:
    """The devices that enrolments with these ``request_id``s made, by (fleet, request)."""
    if not request_ids:
        return {}
    rows = c.execute(
        select(
            DeviceRow.id,
            DeviceRow.fleet_name,
            DeviceRow.enrol_request_id,
            DeviceRow.hardware_id,
            DeviceRow.revision,
            DeviceRow.created_us,
            DeviceRow.last_seen_us,
        ).where(DeviceRow.enrol_request_id.in_(request_ids))
    )
    return {
        (r.fleet_name, r.enrol_request_id): _Enrolled(
            r.id, r.hardware_id, r.revision, r.created_us, r.last_seen_us
        )
        for r in rows
    }


def _retry_of(earlier: _Enrolled, enrolment: Enrolment, now: int) -> None:
    """Refuse a retry that may not have the device ``earlier``; allowed, it gets the device
    with the retry's token.

    Only token digests are kept, so the earlier answer's token cannot be given again: the
    retry gets a new one, and the lost one stops working. That is safe only while no one
    can be using the lost token: within `ENROL_RETRY_WINDOW_US` of the enrolment and
    before the device's first heartbeat or report.
    """
    request_id = enrolment.request_id
    if earlier.hardware_id != enrolment.hardware_id:
        raise InvalidArgumentError(
            f"request_id {request_id} already enrolled device {earlier.id} with another "
            "hardware_id; a new enrolment needs a new request_id",
            reason="REQUEST_ID_REUSED",
            facts={"device_id": earlier.id},
        )
    if (
        earlier.last_seen_us != earlier.created_us
        or now - earlier.created_us > ENROL_RETRY_WINDOW_US
    ):
        raise AlreadyExistsError(
            f"request_id {request_id} already enrolled device {earlier.id}, which is in use or "
            "was enrolled too long ago to enrol again; a new enrolment needs a new request_id",
            reason="ENROLMENT_DONE",
            facts={"device_id": earlier.id},
        )


def _repeats_last_report(row: DeviceRow, status: DeviceStatus) -> bool:
    """Whether ``status`` says exactly what the device last reported, with no cost to add."""
    return (
        row.reported_us is not None
        and status.profiling_cost is None
        and (row.model_sha256 or "") == status.model_sha256
        and (row.measured_latency_ms or 0.0) == status.measured_latency_ms
        and (row.onnxruntime_version or "") == status.onnxruntime_version
        and tuple(json.loads(row.errors_json or "[]")) == tuple(status.errors)
    )


def _device(row: DeviceRow) -> DeviceRecord:
    status = None
    if row.reported_us is not None:
        status = DeviceStatus(
            model_sha256=row.model_sha256 or "",
            measured_latency_ms=row.measured_latency_ms or 0.0,
            onnxruntime_version=row.onnxruntime_version or "",
            errors=tuple(json.loads(row.errors_json or "[]")),
            reported_us=row.reported_us,
        )
    return DeviceRecord(
        id=row.id,
        fleet=row.fleet_name,
        hardware_id=row.hardware_id,
        revision=row.revision,
        created_us=row.created_us,
        last_seen_us=row.last_seen_us,
        status=status,
        profiling_cost_total=EnergyCost(
            row.profiling_cpu_seconds or 0.0,
            row.profiling_joules or 0.0,
            row.profiling_co2e_grams or 0.0,
        ),
    )


def _change(row: ChangeRow) -> Change:
    return Change(
        cursor=row.cursor,
        kind=ChangeKind(row.kind),
        operation=ChangeOperation(row.operation),
        entity_id=row.entity_id,
        parent=row.parent,
        revision=row.revision,
        committed_us=row.committed_us,
    )


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:NAMES_SHOWN_IN_ERRORS])
    return shown + (" and more" if len(names) > NAMES_SHOWN_IN_ERRORS else "")
