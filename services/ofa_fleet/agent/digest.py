"""Checks that a file holds exactly the bytes a manifest describes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.errors import IntegrityError

_CHUNK_BYTES = 1 << 20


def check_file(path: Path, manifest: Manifest, *, fsync: bool = False) -> None:
    """Raise `IntegrityError` unless `path` has the manifest's size and sha256.

    With `fsync`, the file's data is also made durable once it is known to be right, from
    the same open file, so that what is renamed into place next is what was checked.
    """
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size != manifest.size_bytes:
            raise IntegrityError(
                f"{path.name}: {size} bytes, but the manifest of model {manifest.sha256} says "
                f"{manifest.size_bytes}"
            )
        digest = hashlib.sha256()
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
        if digest.hexdigest() != manifest.sha256:
            raise IntegrityError(
                f"{path.name}: sha256 {digest.hexdigest()}, but the manifest says {manifest.sha256}"
            )
        if fsync:
            os.fsync(handle.fileno())
