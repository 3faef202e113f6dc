"""Download staging: partial model files that an interrupted transfer resumes.

A partial is `downloads/<sha256>.part`, named by the sha256 it should end up with, so a
resumed stream continues the right file. Its size on disk is the resume offset; appends
are not fsynced one by one, because a partial is trusted for nothing: before it is
installed its whole content is checked against the manifest, and a partial that fails is
discarded. After a power cut a partial may therefore hold garbage at its end; the check
catches it and the download starts again from zero.
"""

from __future__ import annotations

import os
from pathlib import Path

from ofa_fleet.contract.fields import check_sha256
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.storage.durable import write_all

PART_SUFFIX = ".part"


class Downloads:
    """The partial downloads in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, sha256: str) -> Path:
        return self.directory / (check_sha256(sha256, "sha256", required=True) + PART_SUFFIX)

    def size(self, sha256: str) -> int:
        """Bytes already downloaded for `sha256`: the offset to resume from."""
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, sha256: str, offset: int, data: bytes) -> int:
        """Add `data` at `offset`, which must be the partial's size; return the new size.

        Any other offset is refused: a resumed stream that does not start exactly where
        the partial ends would leave a gap or write bytes twice.
        """
        handle = os.open(self.path(sha256), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(handle).st_size
            if offset != size:
                raise InvalidArgumentError(
                    f"offset {offset} does not continue the download of {sha256}: "
                    f"{size} bytes are on disk, so the next offset must be {size}"
                )
            write_all(handle, data)
            return size + len(data)
        finally:
            os.close(handle)

    def discard(self, sha256: str) -> None:
        """Delete the partial, so the next download of `sha256` starts at zero."""
        self.path(sha256).unlink(missing_ok=True)
