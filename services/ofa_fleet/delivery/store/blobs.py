"""Where model bytes live: content-addressed, immutable blobs named by their sha256.

Two stores behind one `BlobStore` protocol:

- `FileBlobStore` keeps one file per blob under a root folder. It fits one delivery
  replica on a local disk, or several replicas sharing a volume that every pod mounts
  read-write (a ReadWriteMany PersistentVolumeClaim: NFS, CephFS, EFS, Filestore). It
  keeps the database small and reads at disk speed.
- `DatabaseBlobStore` keeps blobs as rows of ``model_blobs`` (``bytea`` in PostgreSQL).
  It fits several replicas without a shared volume: the database they already share is
  the only stateful piece to run, back up and restore, and records and bytes can never
  be restored out of step. Blobs are a few MB and written once per specialization, and
  every replica caches what it serves in memory, so the database carries one read per
  blob per replica, not one per download.

Both are atomic (a reader, or a crash, never sees half a blob), idempotent (putting the
same bytes again changes nothing) and verify on read: `get` returns bytes whose sha256 is
the name asked for, or raises `IntegrityError`. Verifying costs a few milliseconds per MB
once per replica (reads go through `ModelStore`'s cache); not verifying would let one
flipped bit on a disk or a restore from a bad backup be streamed to every device, each of
which would refuse it and retry forever, never getting a model.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError as DuplicateKeyError

from ofa_fleet.contract.fields import check_sha256
from ofa_fleet.delivery.store.tables import ModelBlobRow
from ofa_fleet.errors import IntegrityError, NotFoundError
from ofa_fleet.storage.database import Database
from ofa_fleet.storage.durable import TEMP_SUFFIX, fsync_directory, write_atomic

SUFFIX = ".onnx"
# What a crashed `write_atomic` leaves, and what releases before it used left.
TEMPORARY_PATTERNS = (f".*{TEMP_SUFFIX}", ".partial-*")
STALE_TEMPORARY_S = 3600.0


class BlobStore(Protocol):
    """Immutable blobs named by the sha256 (hex) of their bytes."""

    def put(self, data: bytes) -> str:
        """Store `data` whole (atomically, durably, idempotently); returns its sha256."""
        ...

    def get(self, sha256: str) -> bytes:
        """The bytes named `sha256`, verified; `NotFoundError` if there is no such blob."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int:
        """Length in bytes; `NotFoundError` if there is no such blob."""
        ...


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified(sha256: str, data: bytes, where: str) -> bytes:
    """`data` if its sha256 is `sha256`; `IntegrityError` naming `where` otherwise."""
    actual = digest(data)
    if actual != sha256:
        raise IntegrityError(
            f"blob {sha256} in {where} is corrupt: its {len(data)} bytes hash to {actual}; "
            "restore it from a backup or delete the model so that it is specialized again"
        )
    return data


def _not_found(sha256: str, where: str) -> NotFoundError:
    return NotFoundError(f"no blob {sha256} in {where}")


class FileBlobStore:
    """One file per blob: ``root/ab/abcdef....onnx`` for sha256 ``abcdef...``.

    The two-hex-digit folders keep any one folder to a few hundred entries at a hundred
    thousand models. A blob is written to a temporary file in its final folder (so the
    rename never crosses file systems), flushed and fsynced, renamed over its final name
    (atomic: readers see no file or the whole file) and the folder fsynced (so the
    rename itself survives power loss). Two replicas putting the same blob at once both
    rename complete, identical files; either wins.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        check_sha256(sha256, "sha256", required=True)
        return self.root / sha256[:2] / f"{sha256}{SUFFIX}"

    def put(self, data: bytes) -> str:
        sha256 = digest(data)
        final = self.path(sha256)
        folder = final.parent
        if not folder.is_dir():
            folder.mkdir(exist_ok=True)
            fsync_directory(self.root)
        if not self._has_whole(final, sha256):
            # Models are not secrets (every device downloads them); a private 0600 file
            # would hide them from a sidecar or another user serving the same volume.
            write_atomic(final, data, mode=0o644)
        # Also when another writer renamed it: its rename is durable only once this is.
        fsync_directory(folder)
        return sha256

    def get(self, sha256: str) -> bytes:
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise _not_found(sha256, str(self.root)) from None
        return verified(sha256, data, str(path))

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            raise _not_found(sha256, str(self.root)) from None

    def remove_stale_temporaries(self, older_than_s: float = STALE_TEMPORARY_S) -> int:
        """Delete temporary files a crashed writer left behind; returns how many.

        Only files older than `older_than_s` go: on a shared volume a younger one may be
        another replica's write in progress. Nothing reads temporary files, so leaving
        them costs only disk space.
        """
        cutoff = time.time() - older_than_s
        removed = 0
        for pattern in TEMPORARY_PATTERNS:
            for path in self.root.glob(f"??/{pattern}"):
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
        return removed

    @staticmethod
    def _has_whole(path: Path, sha256: str) -> bool:
        """Whether `path` already holds the blob, checked byte for byte.

        Puts are rare (one per specialization), so re-adding a model also repairs a file
        that a disk or an operator damaged, where a size check would keep a flipped bit.
        """
        try:
            return digest(path.read_bytes()) == sha256
        except FileNotFoundError:
            return False


class DatabaseBlobStore:
    """Blobs as rows of ``model_blobs``, in the same database as the model records.

    A row is written by one transaction, so it is whole or absent. Two replicas putting
    the same blob at once race on the primary key; the loser finds the winner's identical
    row and returns.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def put(self, data: bytes) -> str:
        sha256 = digest(data)
        if self.exists(sha256):
            return sha256
        with contextlib.suppress(DuplicateKeyError), self.database.write() as session:
            session.add(ModelBlobRow(sha256=sha256, data=data))
        return sha256

    def get(self, sha256: str) -> bytes:
        check_sha256(sha256, "sha256", required=True)
        with self.database.read_connection() as connection:
            if self.database.url.is_sqlite:
                data = connection.scalar(
                    select(ModelBlobRow.data).where(ModelBlobRow.sha256 == sha256)
                )
            else:
                data = _fetch_binary(connection, sha256)
        if data is None:
            raise _not_found(sha256, "the database")
        return verified(sha256, bytes(data), f"the database ({self.database.url.redacted()})")

    def exists(self, sha256: str) -> bool:
        check_sha256(sha256, "sha256", required=True)
        with self.database.read_connection() as connection:
            found = connection.scalar(
                select(ModelBlobRow.sha256).where(ModelBlobRow.sha256 == sha256)
            )
        return found is not None

    def size(self, sha256: str) -> int:
        check_sha256(sha256, "sha256", required=True)
        with self.database.read_connection() as connection:
            length = connection.scalar(
                select(func.length(ModelBlobRow.data)).where(ModelBlobRow.sha256 == sha256)
            )
        if length is None:
            raise _not_found(sha256, "the database")
        return int(length)


def _fetch_binary(connection: Connection, sha256: str) -> bytes | None:
    """A blob from PostgreSQL in the binary wire format.

    psycopg receives ``bytea`` as hex text unless a cursor asks for binary, and decoding
    the hex was most of the time: 2 MB blobs came at 160 MB/s as text, 850 MB/s as binary
    (measured on loopback). The cursor runs inside SQLAlchemy's transaction.
    """
    driver = connection.connection.driver_connection
    assert driver is not None, "an open connection has its driver connection"
    with driver.cursor(binary=True) as cursor:
        cursor.execute(
            f"SELECT data FROM {ModelBlobRow.__tablename__} WHERE sha256 = %s", (sha256,)
        )
        row = cursor.fetchone()
    return None if row is None else bytes(row[0])
