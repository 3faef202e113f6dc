"""The model store against a real database of each kind and both blob stores."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, select, update

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.delivery.migrations import DELIVERY_MIGRATIONS
from ofa_fleet.delivery.store.blobs import BlobStore, FileBlobStore
from ofa_fleet.delivery.store.model_store import ModelRecord, ModelStore
from ofa_fleet.delivery.store.tables import Base, ModelBlobRow, ModelRow
from ofa_fleet.errors import (
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
)
from ofa_fleet.storage.database import Database
from tests.delivery.conftest import (
    SIGNATURE,
    CountingBlobs,
    blob_store,
    manifest_for,
    model_bytes,
    open_database,
)

PROFILE = "raspberry-pi-4"


def _add(store: ModelStore, seed: int, size: int = 4096, **changes: object) -> ModelRecord:
    data = model_bytes(seed, size)
    return store.add(dataclasses.replace(manifest_for(data), **changes), SIGNATURE, data)


# -- schema ---------------------------------------------------------------------------------


def test_migrated_schema_matches_the_tables(database: Database) -> None:
    with database.writer.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": DELIVERY_MIGRATIONS.version_table}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    assert "alembic_version_delivery" in database.table_names()


def test_migrating_twice_changes_nothing(store: ModelStore) -> None:
    record = _add(store, 1)
    store.database.migrate()
    assert store.record(PROFILE, record.sha256) == record


# -- adding and reading ---------------------------------------------------------------------


def test_add_then_read_round_trips(store: ModelStore) -> None:
    data = model_bytes(1, 10_000)
    manifest = manifest_for(data, latency_ms=2.5, top1=0.9125)
    added = store.add(manifest, SIGNATURE, data)
    assert (added.manifest, added.signature) == (manifest, SIGNATURE)
    assert added.manifest_bytes == manifest.canonical_bytes()
    assert (added.sha256, added.size_bytes, added.profile_name) == (
        manifest.sha256,
        10_000,
        PROFILE,
    )
    assert store.record(PROFILE, manifest.sha256) == added
    assert store.any_record(manifest.sha256) == added
    assert store.read(manifest.sha256) == data


def test_adding_the_same_model_again_changes_nothing(store: ModelStore) -> None:
    first = _add(store, 1)
    again = _add(store, 1, figures={"latency_ms": 9.0})  # a cached answer: stored one wins
    assert first == again
    assert len(store.list_models().items) == 1


def test_a_newer_revision_that_chose_the_same_bytes_gets_its_own_manifest(
    store: ModelStore,
) -> None:
    """A profile specialized again (say on its devices' measured latency table) may choose
    the same subnet: the record then carries the new revision's figures, and both
    specializations' costs."""
    data = model_bytes(1)
    first = store.add(manifest_for(data), SIGNATURE, data, EnergyCost(1.0, 10.0, 0.1))
    newer = dataclasses.replace(
        manifest_for(data, revision=2), figures={"latency_ms": 0.5, "latency_source": "lut"}
    )
    second = store.add(newer, b"new-signature", data, EnergyCost(2.0, 20.0, 0.2))
    assert second.manifest == newer and second.signature == b"new-signature"
    assert second.cost == first.cost + EnergyCost(2.0, 20.0, 0.2)
    assert second.created_us == first.created_us
    assert store.record(PROFILE, first.sha256) == second
    older_again = store.add(manifest_for(data), SIGNATURE, data, EnergyCost(5.0, 50.0, 0.5))
    assert older_again == second  # an older revision never replaces a newer one
    assert len(store.list_models().items) == 1


def test_the_same_bytes_for_two_profiles_are_two_models_with_their_own_manifests(
    store: ModelStore,
) -> None:
    data = model_bytes(1)
    counting = CountingBlobs(store.blobs)
    store = ModelStore(store.database, counting)
    pi = store.add(
        manifest_for(data, predicted_latency_ms=1.356), SIGNATURE, data, EnergyCost(2, 20, 1)
    )
    gateway_manifest = manifest_for(
        data, profile="x86-gateway", revision=3, predicted_latency_ms=0.549
    )
    gateway = store.add(gateway_manifest, bytes(64), data, EnergyCost(1, 10, 0.5))
    assert counting.puts == 2 and store.read(pi.sha256) == data  # one blob: the same bytes
    assert (pi.profile_name, gateway.profile_name) == (PROFILE, "x86-gateway")
    assert store.record("x86-gateway", pi.sha256) == gateway
    assert gateway.manifest == gateway_manifest and gateway.signature == bytes(64)
    assert gateway.manifest.model_figures().predicted_latency_ms == 0.549
    assert store.record(PROFILE, pi.sha256).manifest.model_figures().predicted_latency_ms == (1.356)
    assert store.profiles_of(pi.sha256) == [PROFILE, "x86-gateway"]
    assert store.any_record(pi.sha256) == pi  # the oldest
    assert {r.profile_name for r in store.list_models().items} == {PROFILE, "x86-gateway"}
    assert [r.profile_name for r in store.list_models("x86-gateway").items] == ["x86-gateway"]
    assert [
        (s.profile_name, s.cost) for s in store.specializations(pi.manifest.supernet_version)
    ] == [
        (PROFILE, EnergyCost(2, 20, 1)),
        ("x86-gateway", EnergyCost(1, 10, 0.5)),
    ]
    assert store.specialization_total() == EnergyCost(3, 30, 1.5)
    store.set_current(PROFILE, pi.sha256, "first model")
    store.set_current("x86-gateway", pi.sha256, "first model")
    assert store.current("x86-gateway") == gateway and store.current(PROFILE) == pi
    with pytest.raises(NotFoundError, match="profile 'jetson-nano' has no model"):
        store.set_current("jetson-nano", pi.sha256, "not made for it")
    with pytest.raises(NotFoundError, match="profile 'jetson-nano' has no model"):
        store.record("jetson-nano", pi.sha256)


def test_pages_of_models_of_the_same_bytes_and_moment_lose_none(store: ModelStore) -> None:
    data = model_bytes(1)
    profiles = [f"profile-{i}" for i in range(5)]
    for profile in profiles:
        store.add(manifest_for(data, profile=profile), SIGNATURE, data)
    with store.database.write() as s:  # one moment for all: only the key orders them
        s.execute(update(ModelRow).values(created_us=1))
    seen, token = [], ""
    while True:
        page = store.list_models(page_size=2, page_token=token)
        seen += [r.profile_name for r in page.items]
        if not (token := page.next_token):
            break
    assert seen == sorted(profiles, reverse=True)


def test_a_model_read_once_is_served_from_memory_without_a_query_or_a_blob_read(
    tmp_path: Path, database: Database
) -> None:
    data = model_bytes(1)
    counting = CountingBlobs(FileBlobStore(tmp_path / "blobs"))
    store = ModelStore(database, counting)
    first = store.add(manifest_for(data), SIGNATURE, data)
    store.add(manifest_for(data, profile="x86-gateway"), SIGNATURE, data)
    reader = ModelStore(database, counting)  # another replica: nothing of it in memory yet
    assert reader.readable_in_memory(first.sha256) is None
    model = reader.readable(first.sha256)
    assert (model.data, model.first_profile, model.size_bytes) == (data, PROFILE, len(data))
    gets, queries = counting.gets, []
    count = lambda *args: queries.append(args[2])  # noqa: E731  (the statement)
    event.listen(database.reader, "before_cursor_execute", count)
    try:
        assert reader.readable_in_memory(first.sha256) == model
        assert reader.readable(first.sha256) == model
    finally:
        event.remove(database.reader, "before_cursor_execute", count)
    assert (queries, counting.gets) == ([], gets)
    assert reader.readable_in_memory("ab" * 32) is None  # never read: the caller goes to I/O


def test_re_adding_puts_back_a_lost_blob(tmp_path: Path, database: Database) -> None:
    store = ModelStore(database, FileBlobStore(tmp_path / "blobs"), cache_bytes=0)
    record = _add(store, 1)
    assert isinstance(store.blobs, FileBlobStore)
    store.blobs.path(record.sha256).unlink()
    with pytest.raises(NotFoundError):
        store.read(record.sha256)
    _add(store, 1)
    assert store.read(record.sha256) == model_bytes(1)


def test_a_blob_left_by_a_crash_before_its_record_is_harmless_and_reused(
    store: ModelStore, blobs: BlobStore
) -> None:
    data = model_bytes(1)
    sha256 = blobs.put(data)  # the crash came after the blob, before the record
    assert store.list_models().items == ()
    with pytest.raises(NotFoundError):
        store.any_record(sha256)
    counting = CountingBlobs(blobs)
    ModelStore(store.database, counting).add(manifest_for(data), SIGNATURE, data)
    assert counting.puts == 1 and store.read(sha256) == data


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        ({"sha256": "ab" * 32}, "model bytes hash to [0-9a-f]{64} but manifest.sha256 is abab"),
        ({"size_bytes": 4095}, "model bytes are 4096 long but manifest.size_bytes is 4095"),
    ],
)
def test_bytes_that_do_not_match_the_manifest_leave_nothing_behind(
    store: ModelStore, wrong: dict[str, object], message: str
) -> None:
    data = model_bytes(1)
    manifest = dataclasses.replace(manifest_for(data), **wrong)
    with pytest.raises(IntegrityError, match=message):
        store.add(manifest, SIGNATURE, data)
    assert store.list_models().items == ()
    for sha256 in {manifest.sha256, hashlib.sha256(data).hexdigest()}:
        assert not store.blobs.exists(sha256)
        with pytest.raises(NotFoundError):
            store.any_record(sha256)


@pytest.mark.parametrize(
    ("changes", "signature", "message"),
    [
        ({"profile_name": "Not A Name"}, SIGNATURE, "manifest.profile_name 'Not A Name' is not"),
        ({"supernet_version": ""}, SIGNATURE, "manifest.supernet_version is required"),
        ({"supernet_version": "v" * 65}, SIGNATURE, "supernet_version is 65 characters long"),
        ({"arch": ""}, SIGNATURE, "manifest.arch is required"),
        ({}, b"", "signature is 0 bytes long; it must be 1-1024"),
    ],
)
def test_fields_outside_their_bounds_are_refused(
    store: ModelStore, changes: dict[str, object], signature: bytes, message: str
) -> None:
    data = model_bytes(1)
    with pytest.raises(InvalidArgumentError, match=message):
        store.add(dataclasses.replace(manifest_for(data), **changes), signature, data)
    assert not store.blobs.exists(hashlib.sha256(data).hexdigest())


def test_unknown_models_are_not_found(store: ModelStore) -> None:
    missing = "0" * 64
    for call in (store.any_record, store.read):
        with pytest.raises(NotFoundError, match=f"no model {missing}"):
            call(missing)
    with pytest.raises(InvalidArgumentError, match="sha256 'nope' is not a sha256 digest"):
        store.read("nope")


def test_read_range_at_the_edges(store: ModelStore) -> None:
    data = model_bytes(1, 1000)
    sha256 = _add(store, 1, 1000).sha256
    assert store.read_range(sha256, 0, 1000) == data
    assert store.read_range(sha256, 0, 1) == data[:1]
    assert store.read_range(sha256, 999, 64) == data[999:]  # cut at the end
    assert store.read_range(sha256, 500, 10_000) == data[500:]
    assert store.read_range(sha256, 1000, 64) == b""  # nothing left: resumed when complete
    chunks = [store.read_range(sha256, offset, 64) for offset in range(0, 1000, 64)]
    assert b"".join(chunks) == data
    with pytest.raises(OutOfRangeError, match=r"offset 1001 is past the end of model .* 1000"):
        store.read_range(sha256, 1001, 64)
    with pytest.raises(InvalidArgumentError, match="offset must be 0 or more, got -1"):
        store.read_range(sha256, -1, 64)
    with pytest.raises(InvalidArgumentError, match="length must be at least 1, got 0"):
        store.read_range(sha256, 0, 0)


# -- the cache ------------------------------------------------------------------------------


def test_cached_reads_do_not_touch_the_blob_store(database: Database, blobs: BlobStore) -> None:
    counting = CountingBlobs(blobs)
    writer = ModelStore(database, blobs)
    sha256 = _add(writer, 1, 50_000).sha256
    store = ModelStore(database, counting)  # a replica with a cold cache
    for offset in range(0, 50_000, 4096):
        store.read_range(sha256, offset, 4096)
    store.read(sha256)
    assert counting.gets == 1
    assert _add(store, 2).sha256 in store.cache  # what it adds it has cached
    store.read(_add(store, 2).sha256)
    assert counting.gets == 1


def test_concurrent_misses_load_a_blob_once(database: Database, blobs: BlobStore) -> None:
    sha256 = _add(ModelStore(database, blobs), 1, 200_000).sha256
    counting = CountingBlobs(blobs)
    store = ModelStore(database, counting)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        reads = list(pool.map(lambda _: store.read(sha256), range(64)))
    assert {len(r) for r in reads} == {200_000}
    assert counting.gets == 1


def test_the_cache_is_bounded_by_bytes(database: Database, blobs: BlobStore) -> None:
    counting = CountingBlobs(blobs)
    store = ModelStore(database, counting, cache_bytes=10_000)
    shas = [_add(ModelStore(database, blobs), seed, 4000).sha256 for seed in range(3)]
    big = _add(ModelStore(database, blobs), 9, 20_000).sha256
    for sha256 in shas:
        store.read(sha256)
    assert store.cache.size_bytes == 8000  # the first was evicted to make room for the third
    assert shas[0] not in store.cache and shas[2] in store.cache
    store.read(big)
    store.read(big)
    assert counting.gets == 5  # a blob larger than the cache is read, never kept
    assert big not in store.cache


# -- listing --------------------------------------------------------------------------------


def test_listing_pages_newest_first(store: ModelStore) -> None:
    added = [
        _add(store, seed, profile_name="jetson-nano" if seed % 2 else PROFILE) for seed in range(7)
    ]
    newest_first = sorted(added, key=lambda r: (r.created_us, r.sha256), reverse=True)
    seen: list[ModelRecord] = []
    token = ""
    for _ in range(4):
        page = store.list_models(page_size=2, page_token=token)
        seen.extend(page.items)
        token = page.next_token
        if not token:
            break
    assert seen == newest_first
    pis = store.list_models(PROFILE, page_size=3)
    assert pis.items == tuple(r for r in newest_first if r.profile_name == PROFILE)[:3]
    rest = store.list_models(PROFILE, page_size=3, page_token=pis.next_token)
    assert [r.profile_name for r in rest.items] == [PROFILE] and rest.next_token == ""
    with pytest.raises(InvalidArgumentError, match="same filters"):
        store.list_models("jetson-nano", page_token=pis.next_token)
    with pytest.raises(InvalidArgumentError, match="page_size must be 1-1000"):
        store.list_models(page_size=1001)


# -- current models and history -------------------------------------------------------------


def test_current_model_and_its_history(store: ModelStore) -> None:
    first, second = _add(store, 1).sha256, _add(store, 2).sha256
    assert store.current(PROFILE) is None
    assert store.history(PROFILE) == []
    store.set_current(PROFILE, first, "first model")
    store.set_current(PROFILE, first, "same again")  # already current: no change recorded
    store.set_current(PROFILE, second, "new supernet")
    store.set_current(PROFILE, first, "rollback")
    current = store.current(PROFILE)
    assert current is not None and current.sha256 == first
    history = store.history(PROFILE)
    assert [(h.sha256, h.reason) for h in history] == [
        (first, "rollback"),
        (second, "new supernet"),
        (first, "first model"),
    ]
    assert history[0].at_us >= history[1].at_us >= history[2].at_us
    assert [h.reason for h in store.history(PROFILE, limit=1)] == ["rollback"]
    assert store.current("jetson-nano") is None and store.history("jetson-nano") == []


def test_setting_current_checks_its_arguments(store: ModelStore) -> None:
    sha256 = _add(store, 1).sha256
    with pytest.raises(NotFoundError, match=r"no model 0{64}; add it before making it current"):
        store.set_current(PROFILE, "0" * 64, "why")
    with pytest.raises(InvalidArgumentError, match="reason is required"):
        store.set_current(PROFILE, sha256, "")
    with pytest.raises(InvalidArgumentError, match="reason is 257 characters long"):
        store.set_current(PROFILE, sha256, "x" * 257)
    with pytest.raises(InvalidArgumentError, match="profile_name 'Pi' is not a valid name"):
        store.set_current("Pi", sha256, "why")
    with pytest.raises(InvalidArgumentError, match="limit must be 1-1000, got 0"):
        store.history(PROFILE, limit=0)
    assert store.history(PROFILE) == []


def test_replicas_setting_one_model_at_once_record_it_once(
    db_url: str, backend: tuple[str, str], tmp_path: Path
) -> None:
    replicas = [open_database(db_url) for _ in range(4)]
    try:
        stores = [ModelStore(d, blob_store(backend[1], d, tmp_path / "blobs")) for d in replicas]
        sha256 = _add(stores[0], 1).sha256
        barrier = threading.Barrier(len(stores))

        def set_current(store: ModelStore) -> None:
            barrier.wait()
            store.set_current(PROFILE, sha256, "first model")

        with concurrent.futures.ThreadPoolExecutor(len(stores)) as pool:
            list(pool.map(set_current, stores))
        assert len(stores[1].history(PROFILE)) == 1
    finally:
        for database in replicas:
            database.close()


# -- across processes -----------------------------------------------------------------------


def test_another_database_object_sees_what_one_stored(
    db_url: str, backend: tuple[str, str], store: ModelStore, tmp_path: Path
) -> None:
    record = _add(store, 1, 30_000)
    store.set_current(PROFILE, record.sha256, "first model")
    other = open_database(db_url)
    try:
        fresh = ModelStore(other, blob_store(backend[1], other, tmp_path / "blobs"))
        assert fresh.record(PROFILE, record.sha256) == record
        assert fresh.read(record.sha256) == model_bytes(1, 30_000)
        assert fresh.current(PROFILE) == record
        assert [h.reason for h in fresh.history(PROFILE)] == ["first model"]
    finally:
        other.close()


ADDER = textwrap.dedent(
    """
    import dataclasses, hashlib, random, sys
    from pathlib import Path
    from tests.delivery.conftest import SIGNATURE, blob_store, manifest_for, open_database
    from ofa_fleet.delivery.store.model_store import ModelStore

    url, kind, root = sys.argv[1:]
    database = open_database(url)
    store = ModelStore(database, blob_store(kind, database, Path(root)), cache_bytes=0)
    rng = random.Random()
    while True:
        data = rng.randbytes(rng.randrange(100_000, 2_000_000))
        store.add(manifest_for(data), SIGNATURE, data)
        print(hashlib.sha256(data).hexdigest(), flush=True)
    """
)


def _add_until_killed(db_url: str, blobs: str, root: Path, delay_s: float) -> list[str]:
    """Run the adder, SIGKILL it `delay_s` after its 8th model; the sha256s it acknowledged."""
    adder = subprocess.Popen(
        [sys.executable, "-c", ADDER, db_url, blobs, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert adder.stdout is not None
    acknowledged = [adder.stdout.readline().strip() for _ in range(8)]
    time.sleep(delay_s)
    adder.send_signal(signal.SIGKILL)
    adder.wait(timeout=30)
    acknowledged += [line.strip() for line in adder.stdout if line.strip()]
    assert adder.returncode == -signal.SIGKILL
    assert all(len(sha256) == 64 for sha256 in acknowledged), acknowledged
    return acknowledged


@pytest.mark.integration
def test_kill_9_while_adding_leaves_every_record_whole(
    db_url: str, backend: tuple[str, str], tmp_path: Path
) -> None:
    """A process adds 0.1-2 MB models in a loop and is SIGKILLed at a random moment, three
    times over the same store; afterwards every acknowledged model is there, and every
    record (acknowledged or not) and every blob (recorded or orphan) is whole."""
    root = tmp_path / "blobs"
    rng = random.Random(0)
    acknowledged: list[str] = []
    for _ in range(3):
        acknowledged += _add_until_killed(db_url, backend[1], root, rng.uniform(0.0, 0.05))
    database = open_database(db_url)
    try:
        blobs = blob_store(backend[1], database, root)
        store = ModelStore(database, blobs, cache_bytes=0)
        records = store.list_models(page_size=1000).items
        stored = {r.sha256 for r in records}
        assert set(acknowledged) <= stored, "an acknowledged model was lost"
        assert len(stored) <= len(acknowledged) + 3  # at most the one in flight per kill
        for record in records:
            data = store.read(record.sha256)  # verified against its sha256 on the way
            assert len(data) == record.size_bytes == blobs.size(record.sha256)
        if isinstance(blobs, FileBlobStore):
            whole = {p.stem: p.read_bytes() for p in root.glob("??/*.onnx")}
        else:
            with database.read() as s:
                whole = {r.sha256: r.data for r in s.scalars(select(ModelBlobRow))}
        assert all(hashlib.sha256(data).hexdigest() == name for name, data in whole.items())
    finally:
        database.close()
