"""`ModelStore`: delivery's models (signed records over immutable blobs) and each profile's
current one, as plain Python over a `Database` and a `BlobStore`; no gRPC inside.

A model is a profile's: its record, keyed by (profile, sha256), holds the manifest signed
for that profile (its revision, its predicted figures). Two profiles whose searches chose
the same subnet share one blob and have a record each, so each profile's devices verify
and report against their own profile's figures.

Adding a model writes the blob first and the record second, in its own transaction, so a
record never names a missing blob. A crash between the two leaves a blob without a record:
harmless (nothing points at it, nothing serves it) and reused when the same model is added
again. Changing a profile's current model appends to its history in the same transaction,
so the history holds every change that committed and nothing that rolled back.

Reads go through a per-process cache bounded by bytes and keyed by sha256: content never
changes under a name, so nothing is ever invalidated, and a thousand devices booting at
once cost one blob read per replica, not a thousand (concurrent misses on one blob wait
for a single load instead of each loading it). Which profile first stored each blob is
kept beside it (records are never deleted, so that never changes either): a model that is
read again and again is served from memory without a query or a thread.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError as DuplicateKeyError

from ofa_fleet.carbon.cost import ZERO, EnergyCost
from ofa_fleet.carbon.fleet_ledger import Specialization
from ofa_fleet.contract.fields import check_name, check_sha256, check_text
from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.delivery.store.blobs import BlobStore, digest
from ofa_fleet.delivery.store.tables import (
    REASON_LENGTH,
    SUPERNET_VERSION_LENGTH,
    CurrentModelRow,
    ModelHistoryRow,
    ModelRow,
)
from ofa_fleet.errors import (
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
)
from ofa_fleet.storage.database import Database
from ofa_fleet.storage.lru import Lru
from ofa_fleet.storage.pages import (
    Page,
    check_page_size,
    decode_page_token,
    encode_page_token,
)

MIB = 1024 * 1024
DEFAULT_CACHE_BYTES = 256 * MIB
MAX_SIGNATURE_BYTES = 1024
DEFAULT_HISTORY = 100
MAX_HISTORY = 1000
LOAD_LOCKS = 64
# Blobs whose first profile is remembered: a name each, far more models than a store serves.
FIRST_PROFILES = 4096


@dataclass(frozen=True)
class ModelRecord:
    """A stored model: its manifest, the exact bytes that were signed, the signature.

    Attributes:
        profile_name: the profile whose model this is (the record's key with the sha256).
        manifest: the manifest, rebuilt from `manifest_bytes`.
        manifest_bytes: the canonical bytes exactly as signed; serve these, never a
            re-serialization (a later manifest format must not break old signatures).
        signature: delivery's signature over `manifest_bytes`.
        created_us: when this store first stored the model.
        cost: what the specialization that made it cost (zero when not metered).
    """

    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes
    created_us: int
    cost: EnergyCost = ZERO
    profile_name: str = ""

    def __post_init__(self) -> None:
        if not self.profile_name:
            object.__setattr__(self, "profile_name", self.manifest.profile_name)

    @property
    def signed_for_its_profile(self) -> bool:
        """False for a record carried over from the schema that keyed models by sha256
        alone (migration 0005): it holds another profile's manifest until specialized
        again for its own."""
        return self.manifest.profile_name == self.profile_name

    @property
    def sha256(self) -> str:
        return self.manifest.sha256

    @property
    def size_bytes(self) -> int:
        return self.manifest.size_bytes


@dataclass(frozen=True)
class ReadableModel:
    """A model's bytes as a download serves them: the same whoever reads them.

    Attributes:
        first_profile: the profile that stored these bytes first, whose figures count a
            read by someone who is no device of any profile (an operator).
    """

    sha256: str
    data: bytes
    first_profile: str

    @property
    def size_bytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a profile's current model: to `sha256`, why, and when it committed."""

    profile_name: str
    sha256: str
    reason: str
    at_us: int


class ModelStore:
    """Delivery's models; the servicer, the reconciler, tests and benchmarks call this.

    Thread-safe: every method is one short transaction or a cache lookup, so servers call
    it from worker threads (`asyncio.to_thread`).
    """

    def __init__(
        self, database: Database, blobs: BlobStore, cache_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        self.database = database
        self.blobs = blobs
        self.cache: Lru[str, bytes] = Lru(max_bytes=cache_bytes, size_of=len)
        self._first_profiles: Lru[str, str] = Lru(max_entries=FIRST_PROFILES)
        # Striped rather than one lock per sha256: bounded, and two blobs rarely share one.
        self._load_locks = [threading.Lock() for _ in range(LOAD_LOCKS)]

    # -- models ---------------------------------------------------------------------------

    def add(
        self, manifest: Manifest, signature: bytes, data: bytes, cost: EnergyCost = ZERO
    ) -> ModelRecord:
        """Store the manifest's profile's model whose `data` matches `manifest`; returns
        its record.

        Idempotent per profile revision: adding a (profile, sha256) that is already stored
        for the same revision returns the stored record (whose manifest and cost win if the
        ones given differ: search answers a repeated request from its cache with the cost
        of the search that made the model, which must not count twice) and only puts the
        blob back if it went missing. A newer revision that chose the same bytes gets its
        own manifest and figures on the record, its cost added. The same bytes for another
        profile are another record: that profile's own manifest, figures and cost. A record
        carried over by migration 0005 with another profile's manifest takes the one given.
        ``cost``: the specialization's metered cost.
        """
        _check_cost(cost)
        _check_manifest(manifest)
        if not 1 <= len(signature) <= MAX_SIGNATURE_BYTES:
            raise InvalidArgumentError(
                f"signature is {len(signature)} bytes long; it must be 1-{MAX_SIGNATURE_BYTES}"
            )
        _check_data(manifest, data)
        stored = self._find(manifest.profile_name, manifest.sha256)
        if stored is not None and not _outdated(stored, manifest):
            if not self.blobs.exists(manifest.sha256):  # a lost volume, repaired by re-adding
                self.blobs.put(data)
            return stored
        self.blobs.put(data)
        if stored is not None:
            return self._sign_again(manifest, signature, cost)
        row = ModelRow(profile_name=manifest.profile_name, sha256=manifest.sha256)
        _fill(row, manifest, signature, cost)
        try:
            with self.database.write() as s:
                s.add(row)
        except DuplicateKeyError:  # another replica stored it first: theirs is the record
            return self.record(manifest.profile_name, manifest.sha256)
        self.cache.put(manifest.sha256, data)
        return _record(row)

    def _sign_again(self, manifest: Manifest, signature: bytes, cost: EnergyCost) -> ModelRecord:
        """The record of `manifest`'s profile given `manifest`: a carried-over record its
        own manifest, or a record a newer profile revision chose again its new figures
        (the specialization's cost added to the earlier one's)."""
        with self.database.write() as s:
            row = s.get(ModelRow, (manifest.profile_name, manifest.sha256), with_for_update=True)
            if row is None:  # cannot be: records are never deleted
                raise NotFoundError(f"no model {manifest.sha256} for {manifest.profile_name}")
            stored = _record(row)
            if not stored.signed_for_its_profile:
                _fill(row, manifest, signature, cost)
            elif _outdated(stored, manifest):  # else another replica did it first
                first_stored = row.created_us
                _fill(row, manifest, signature, stored.cost + cost)
                row.created_us = first_stored
            s.flush()
            return _record(row)

    def record(self, profile_name: str, sha256: str) -> ModelRecord:
        """The profile's model of these bytes; `NotFoundError` if it has none."""
        check_name(profile_name, "profile_name")
        check_sha256(sha256, "sha256", required=True)
        stored = self._find(profile_name, sha256)
        if stored is None:
            raise NotFoundError(f"profile {profile_name!r} has no model {sha256}")
        return stored

    def any_record(self, sha256: str) -> ModelRecord:
        """The oldest record of these bytes, whichever profile's: what reading them needs."""
        check_sha256(sha256, "sha256", required=True)
        query = (
            select(ModelRow)
            .where(ModelRow.sha256 == sha256)
            .order_by(ModelRow.created_us, ModelRow.profile_name)
            .limit(1)
        )
        with self.database.read() as s:
            row = s.scalars(query).first()
            if row is None:
                raise NotFoundError(f"no model {sha256}")
            record = _record(row)
        self._first_profiles.put(sha256, record.profile_name)
        return record

    def readable(self, sha256: str) -> ReadableModel:
        """The model's bytes to serve (`NotFoundError` if no profile has them): from memory
        when `readable_in_memory` has them, else one query and one blob read."""
        check_sha256(sha256, "sha256", required=True)
        profile = self._first_profiles.get(sha256) or self.any_record(sha256).profile_name
        return ReadableModel(sha256, self.read(sha256), profile)

    def readable_in_memory(self, sha256: str) -> ReadableModel | None:
        """`readable`'s answer if it needs no I/O, else None: safe on an event loop, where
        the hot path of a fleet's downloads then costs no hop to a worker thread."""
        data = self.cache.get(sha256)
        profile = self._first_profiles.get(sha256)
        if data is None or profile is None:
            return None
        return ReadableModel(sha256, data, profile)

    def profiles_of(self, sha256: str) -> list[str]:
        """The profiles that have a model of these bytes, by name."""
        check_sha256(sha256, "sha256", required=True)
        query = (
            select(ModelRow.profile_name)
            .where(ModelRow.sha256 == sha256)
            .order_by(ModelRow.profile_name)
        )
        with self.database.read() as s:
            return list(s.scalars(query))

    def read(self, sha256: str) -> bytes:
        """The model's bytes, verified, from the cache or else the blob store."""
        check_sha256(sha256, "sha256", required=True)
        cached = self.cache.get(sha256)
        if cached is not None:
            return cached
        with self._load_locks[int(sha256[:8], 16) % LOAD_LOCKS]:
            cached = self.cache.get(sha256)  # loaded while this thread waited for the lock
            if cached is not None:
                return cached
            try:
                data = self.blobs.get(sha256)
            except NotFoundError:
                raise NotFoundError(f"no model {sha256}") from None
            self.cache.put(sha256, data)
            return data

    def read_range(self, sha256: str, offset: int, length: int) -> bytes:
        """Up to `length` bytes of the model from `offset`: a chunk, or the rest on resume.

        `offset` may equal the size (nothing is left: the answer is empty); beyond it is
        `OutOfRangeError`. A range running past the end is cut at the end.
        """
        if offset < 0:
            raise InvalidArgumentError(f"offset must be 0 or more, got {offset}")
        if length < 1:
            raise InvalidArgumentError(f"length must be at least 1, got {length}")
        data = self.read(sha256)
        if offset > len(data):
            raise OutOfRangeError(
                f"offset {offset} is past the end of model {sha256}, which is {len(data)} "
                f"bytes long; resume from an offset between 0 and {len(data)}"
            )
        return data[offset : offset + length]

    def list_models(
        self, profile_name: str | None = None, page_size: int = 0, page_token: str = ""
    ) -> Page[ModelRecord]:
        """Models newest first, all or one profile's; the token resumes after the last shown."""
        size = check_page_size(page_size)
        listing = "models"
        query = select(ModelRow)
        if profile_name:
            check_name(profile_name, "profile_name")
            listing = f"models/{profile_name}"
            query = query.where(ModelRow.profile_name == profile_name)
        after = decode_page_token(page_token, listing)
        if after:
            query = _after(query, after)
        query = query.order_by(
            ModelRow.created_us.desc(), ModelRow.sha256.desc(), ModelRow.profile_name.desc()
        )
        with self.database.read() as s:
            rows = s.scalars(query.limit(size + 1)).all()
        shown = rows[:size]
        token = ""
        if len(rows) > size:
            last = shown[-1]
            token = encode_page_token(
                listing, f"{last.created_us}:{last.sha256}:{last.profile_name}"
            )
        return Page(tuple(_record(r) for r in shown), token)

    def sign_again(
        self, signature_for: Callable[[bytes, bytes], bytes | None], batch: int = 500
    ) -> int:
        """Replace stored signatures: `signature_for(manifest_bytes, signature)` returns a
        record's new signature, or None to leave it; returns how many changed.

        Reads `batch` records at a time in key order. A record whose signature changed
        meanwhile (the reconciler stored a newer manifest) keeps the newer one.
        """
        changed = 0
        last: tuple[str, str] | None = None
        while True:
            query = select(
                ModelRow.profile_name, ModelRow.sha256, ModelRow.manifest, ModelRow.signature
            ).order_by(ModelRow.profile_name, ModelRow.sha256)
            if last is not None:
                query = query.where(
                    or_(
                        ModelRow.profile_name > last[0],
                        and_(ModelRow.profile_name == last[0], ModelRow.sha256 > last[1]),
                    )
                )
            with self.database.read() as s:
                rows = s.execute(query.limit(batch)).all()
            if not rows:
                return changed
            last = (rows[-1].profile_name, rows[-1].sha256)
            updates = []
            for row in rows:
                old = bytes(row.signature)
                new = signature_for(bytes(row.manifest), old)
                if new is not None and new != old:
                    updates.append((row.profile_name, row.sha256, old, new))
            if updates:
                with self.database.write() as s:
                    for profile_name, sha256, old, new in updates:
                        result = s.execute(
                            update(ModelRow)
                            .where(
                                ModelRow.profile_name == profile_name,
                                ModelRow.sha256 == sha256,
                                ModelRow.signature == old,
                            )
                            .values(signature=new)
                        )
                        changed += result.rowcount  # type: ignore[attr-defined]

    # -- the carbon ledger ----------------------------------------------------------------

    def specializations(self, supernet_version: str) -> list[Specialization]:
        """Every model made from ``supernet_version``, one per profile it was made for,
        with what specializing it cost."""
        query = (
            select(ModelRow)
            .where(ModelRow.supernet_version == supernet_version)
            .order_by(ModelRow.created_us, ModelRow.sha256)
        )
        with self.database.read() as s:
            return [
                Specialization(r.profile_name, r.sha256, r.supernet_version, _cost(r))
                for r in s.scalars(query)
            ]

    def specialization_total(self) -> EnergyCost:
        """What every stored model's specialization cost, over every supernet."""
        query = select(
            func.coalesce(func.sum(ModelRow.specialization_cpu_seconds), 0.0),
            func.coalesce(func.sum(ModelRow.specialization_joules), 0.0),
            func.coalesce(func.sum(ModelRow.specialization_co2e_grams), 0.0),
        )
        with self.database.read() as s:
            cpu, joules, grams = s.execute(query).one()
        return EnergyCost(float(cpu), float(joules), float(grams))

    # -- current models and their history -------------------------------------------------

    def set_current(self, profile_name: str, sha256: str, reason: str) -> None:
        """Make `sha256` the profile's current model, recording why (a no-op if it is)."""
        check_name(profile_name, "profile_name")
        check_sha256(sha256, "sha256", required=True)
        if not reason:
            raise InvalidArgumentError("reason is required: say why the model changes")
        check_text(reason, "reason", REASON_LENGTH)
        try:
            self._set_current(profile_name, sha256, reason)
        except DuplicateKeyError:
            # Another replica made the profile's first current model at the same moment;
            # now its row exists and the retry waits on its lock instead.
            self._set_current(profile_name, sha256, reason)

    def _set_current(self, profile_name: str, sha256: str, reason: str) -> None:
        with self.database.write() as s:
            if s.get(ModelRow, (profile_name, sha256)) is None:
                raise NotFoundError(
                    f"profile {profile_name!r} has no model {sha256}; add it before making "
                    "it current"
                )
            # FOR UPDATE (PostgreSQL; SQLite has one writer anyway): a concurrent change
            # waits, then sees this one, so two replicas setting one model record it once.
            current = s.scalars(
                select(CurrentModelRow)
                .where(CurrentModelRow.profile_name == profile_name)
                .with_for_update()
            ).first()
            if current is not None and current.sha256 == sha256:
                return
            now = _now_us()
            if current is None:
                s.add(CurrentModelRow(profile_name=profile_name, sha256=sha256, since_us=now))
            else:
                current.sha256, current.since_us = sha256, now
            s.add(
                ModelHistoryRow(profile_name=profile_name, sha256=sha256, reason=reason, at_us=now)
            )

    def current(self, profile_name: str) -> ModelRecord | None:
        """The profile's current model, or None while it has none."""
        check_name(profile_name, "profile_name")
        query = (
            select(ModelRow)
            .join(
                CurrentModelRow,
                and_(
                    CurrentModelRow.profile_name == ModelRow.profile_name,
                    CurrentModelRow.sha256 == ModelRow.sha256,
                ),
            )
            .where(CurrentModelRow.profile_name == profile_name)
        )
        with self.database.read() as s:
            row = s.scalars(query).first()
            return None if row is None else _record(row)

    def history(self, profile_name: str, limit: int = DEFAULT_HISTORY) -> list[HistoryEntry]:
        """The profile's changes of current model, newest first, at most `limit`."""
        check_name(profile_name, "profile_name")
        if not 1 <= limit <= MAX_HISTORY:
            raise InvalidArgumentError(f"limit must be 1-{MAX_HISTORY}, got {limit}")
        return [entry for _, entry in self._history(profile_name, 0, limit)]

    def history_page(
        self, profile_name: str, page_size: int = 0, page_token: str = ""
    ) -> Page[HistoryEntry]:
        """One page of `history`; the token resumes after the last entry shown."""
        check_name(profile_name, "profile_name")
        size = check_page_size(page_size, "history_page_size")
        listing = f"history/{profile_name}"
        after = decode_page_token(page_token, listing)
        if after and not after.isdigit():
            raise InvalidArgumentError("history_page_token is not one this listing issued")
        rows = self._history(profile_name, int(after or 0), size + 1)
        token = encode_page_token(listing, str(rows[size - 1][0])) if len(rows) > size else ""
        return Page(tuple(entry for _, entry in rows[:size]), token)

    def _history(
        self, profile_name: str, before_id: int, limit: int
    ) -> list[tuple[int, HistoryEntry]]:
        """(row id, entry) newest first, only rows older than `before_id` when it is set."""
        query = select(ModelHistoryRow).where(ModelHistoryRow.profile_name == profile_name)
        if before_id:
            query = query.where(ModelHistoryRow.id < before_id)
        query = query.order_by(ModelHistoryRow.id.desc()).limit(limit)
        with self.database.read() as s:
            return [
                (r.id, HistoryEntry(r.profile_name, r.sha256, r.reason, r.at_us))
                for r in s.scalars(query)
            ]

    def _find(self, profile_name: str, sha256: str) -> ModelRecord | None:
        with self.database.read() as s:
            row = s.get(ModelRow, (profile_name, sha256))
            return None if row is None else _record(row)


def _outdated(stored: ModelRecord, manifest: Manifest) -> bool:
    """Whether `manifest` should replace the stored record's: the record was carried over
    with another profile's manifest, or a newer revision of its profile chose the same
    bytes (with figures of its own: a measured latency table, another budget)."""
    return (
        not stored.signed_for_its_profile
        or stored.manifest.profile_revision < manifest.profile_revision
    )


def _fill(row: ModelRow, manifest: Manifest, signature: bytes, cost: EnergyCost) -> None:
    """Everything of `row` but its key, from the manifest as signed and the cost."""
    row.size_bytes = manifest.size_bytes
    row.profile_revision = manifest.profile_revision
    row.supernet_version = manifest.supernet_version
    row.arch = manifest.arch
    row.figures_json = json.dumps(manifest.figures, sort_keys=True)
    row.manifest = manifest.canonical_bytes()
    row.signature = signature
    row.created_us = _now_us()
    row.specialization_cpu_seconds = cost.cpu_seconds
    row.specialization_joules = cost.joules
    row.specialization_co2e_grams = cost.co2e_grams


def _check_manifest(manifest: Manifest) -> None:
    """The manifest fields this store keeps in bounded columns."""
    check_name(manifest.profile_name, "manifest.profile_name")
    if not manifest.supernet_version:
        raise InvalidArgumentError("manifest.supernet_version is required")
    check_text(manifest.supernet_version, "manifest.supernet_version", SUPERNET_VERSION_LENGTH)
    if not manifest.arch:
        raise InvalidArgumentError("manifest.arch is required")


def _check_cost(cost: EnergyCost) -> None:
    figures = cost.to_dict()
    bad = {k: v for k, v in figures.items() if not (math.isfinite(v) and v >= 0)}
    if bad:
        raise InvalidArgumentError(
            f"specialization cost must be finite and not negative, got {bad}"
        )


def _check_data(manifest: Manifest, data: bytes) -> None:
    """`IntegrityError` unless `data` is exactly the bytes `manifest` describes."""
    if len(data) != manifest.size_bytes:
        raise IntegrityError(
            f"model bytes are {len(data)} long but manifest.size_bytes is "
            f"{manifest.size_bytes}; store only the bytes the manifest describes"
        )
    actual = digest(data)
    if actual != manifest.sha256:
        raise IntegrityError(
            f"model bytes hash to {actual} but manifest.sha256 is {manifest.sha256}; "
            "store only the bytes the manifest describes"
        )


def _after(query: Select[ModelRow], last: str) -> Select[ModelRow]:
    """Rows after `last` ("created_us:sha256:profile") in newest-first order."""
    created, _, rest = last.partition(":")
    sha256, _, profile = rest.partition(":")
    try:
        created_us = int(created)
        check_sha256(sha256, "page_token", required=True)
        check_name(profile, "page_token")
    except ValueError:  # InvalidArgumentError is one too
        raise InvalidArgumentError(
            "page_token is not one this listing issued; pass the next_page_token of the "
            "previous page with the same filters, or leave it empty for the first page"
        ) from None
    return query.where(
        or_(
            ModelRow.created_us < created_us,
            and_(ModelRow.created_us == created_us, ModelRow.sha256 < sha256),
            and_(
                ModelRow.created_us == created_us,
                ModelRow.sha256 == sha256,
                ModelRow.profile_name < profile,
            ),
        )
    )


def _record(row: ModelRow) -> ModelRecord:
    manifest_bytes = bytes(row.manifest)
    return ModelRecord(
        manifest=Manifest.from_bytes(manifest_bytes),
        manifest_bytes=manifest_bytes,
        signature=bytes(row.signature),
        created_us=row.created_us,
        cost=_cost(row),
        profile_name=row.profile_name,
    )


def _cost(row: ModelRow) -> EnergyCost:
    return EnergyCost(
        row.specialization_cpu_seconds, row.specialization_joules, row.specialization_co2e_grams
    )


def _now_us() -> int:
    return time.time_ns() // 1000
