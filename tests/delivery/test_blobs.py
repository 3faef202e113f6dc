"""Blob stores: round trips, idempotence, verification on read, atomic writes."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import stat
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from ofa_fleet.delivery.store.blobs import BlobStore, FileBlobStore
from ofa_fleet.delivery.store.tables import ModelBlobRow
from ofa_fleet.errors import IntegrityError, InvalidArgumentError, NotFoundError
from ofa_fleet.storage.database import Database
from tests.delivery.conftest import model_bytes

MISSING = "0" * 64


def test_put_then_get_round_trips(blobs: BlobStore) -> None:
    data = model_bytes(1, 100_000)
    sha256 = blobs.put(data)
    assert sha256 == hashlib.sha256(data).hexdigest()
    assert blobs.get(sha256) == data
    assert blobs.exists(sha256)
    assert blobs.size(sha256) == len(data)


def test_put_is_idempotent(blobs: BlobStore) -> None:
    data = model_bytes(2)
    assert blobs.put(data) == blobs.put(data)
    assert blobs.get(hashlib.sha256(data).hexdigest()) == data


def test_missing_blobs_are_not_found(blobs: BlobStore) -> None:
    assert not blobs.exists(MISSING)
    with pytest.raises(NotFoundError, match=f"no blob {MISSING}"):
        blobs.get(MISSING)
    with pytest.raises(NotFoundError, match=f"no blob {MISSING}"):
        blobs.size(MISSING)


@pytest.mark.parametrize("name", ["", "AB" * 32, "ab" * 31, "../" + "a" * 61])
def test_a_name_must_be_a_sha256(blobs: BlobStore, name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"sha256 .* is not a sha256 digest"):
        blobs.get(name)


def test_concurrent_puts_of_one_blob_all_succeed(blobs: BlobStore) -> None:
    data = model_bytes(3, 500_000)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        names = set(pool.map(lambda _: blobs.put(data), range(8)))
    assert names == {hashlib.sha256(data).hexdigest()}
    assert blobs.get(names.pop()) == data


def test_a_corrupt_blob_is_refused_on_read(
    backend: tuple[str, str], blobs: BlobStore, database: Database
) -> None:
    data = model_bytes(4)
    sha256 = blobs.put(data)
    flipped = bytes([data[0] ^ 1]) + data[1:]
    if isinstance(blobs, FileBlobStore):
        blobs.path(sha256).write_bytes(flipped)
    else:
        with database.write() as s:
            s.execute(
                update(ModelBlobRow).where(ModelBlobRow.sha256 == sha256).values(data=flipped)
            )
    with pytest.raises(IntegrityError, match=f"blob {sha256} in .* is corrupt"):
        blobs.get(sha256)


# -- files ----------------------------------------------------------------------------------


def test_files_are_content_addressed_and_readable_by_others(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    sha256 = store.put(b"model")
    path = tmp_path / "blobs" / sha256[:2] / f"{sha256}.onnx"
    assert store.path(sha256) == path
    assert path.read_bytes() == b"model"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_a_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileBlobStore(tmp_path)
    real_fsync = os.fsync
    written: list[int] = []

    def full_disk(descriptor: int) -> None:
        if stat.S_ISDIR(os.fstat(descriptor).st_mode):
            return real_fsync(descriptor)
        written.append(os.fstat(descriptor).st_size)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        store.put(b"half a model")
    monkeypatch.undo()
    assert written == [len(b"half a model")]  # it failed with the temporary file written
    sha256 = hashlib.sha256(b"half a model").hexdigest()
    assert not store.exists(sha256)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert store.put(b"half a model") == sha256  # and the next try succeeds


def test_a_blob_lost_from_the_volume_is_written_again(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    sha256 = store.put(b"model")
    store.path(sha256).unlink()
    store.put(b"model")
    assert store.get(sha256) == b"model"


@pytest.mark.parametrize("damaged", [b"whole", b"whole mode!"])
def test_a_damaged_file_is_replaced_by_the_next_put(tmp_path: Path, damaged: bytes) -> None:
    store = FileBlobStore(tmp_path)
    sha256 = store.put(b"whole model")
    store.path(sha256).write_bytes(damaged)
    store.put(b"whole model")
    assert store.get(sha256) == b"whole model"


def test_only_stale_temporaries_are_removed(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    folder = tmp_path / "ab"
    folder.mkdir()
    stale = folder / f".{'ab' * 32}.onnx.crashed.tmp"
    stale_of_an_older_release = folder / ".partial-crashed"
    young = folder / f".{'ab' * 32}.onnx.writing.tmp"
    hours_ago = time.time() - 7200
    for path in (stale, stale_of_an_older_release, young):
        path.write_bytes(b"half")
    for path in (stale, stale_of_an_older_release):
        os.utime(path, (hours_ago, hours_ago))
    assert store.remove_stale_temporaries() == 2
    assert not stale.exists() and not stale_of_an_older_release.exists()
    assert young.exists()
