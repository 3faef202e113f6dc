"""Writes that survive a crash at any instant: whole or not at all, and then for good.

A file is written under a temporary name in its final directory, fsynced, renamed over
its final name (atomic on POSIX: a reader sees the old file or the new one, never a mix)
and the directory is fsynced, so that after a power cut the rename is not lost either.
Temporary names are recognisable (`.NAME.RANDOM.tmp`), so what a crash leaves behind can
be removed on the next start without touching anything else.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"


def write_all(handle: int, data: bytes) -> None:
    """`os.write` until every byte is written (one call may write fewer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(handle, view) :]


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (names created, renamed, removed) durable."""
    handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def write_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace `path` with `data`: after a crash it holds the old bytes or the new ones."""
    with open_atomic(path, mode=mode) as handle:
        handle.write(data)


@contextmanager
def open_atomic(path: Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file that replaces `path` as a whole when the block ends without error.

    For writers that stream (``torch.save``, ``savefig``) rather than hold the bytes: the
    file is fsynced, renamed over `path` and its directory fsynced, as `write_atomic`
    does; on an error the temporary file is removed and `path` is left as it was. The
    file is created 0600 (``mkstemp``) unless `mode` says otherwise.
    """
    path = Path(path)
    handle, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent
    )
    try:
        with os.fdopen(handle, "wb") as tmp:
            if mode is not None:
                os.fchmod(tmp.fileno(), mode)
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def publish_new(path: Path, data: bytes) -> bool:
    """Create `path` holding `data` unless it exists; True when this call created it.

    For a file several processes may create at the same moment, where exactly one must
    win and every other must read the winner's (a shared key): the data is fsynced under
    a temporary name (0600 from its creation, by ``mkstemp``) and then hard-linked to
    `path`, which, unlike a rename, fails when the name is taken. So `path` never names a
    partly written file. An `OSError` other than the name being taken (a filesystem that
    refuses hard links) is the caller's to explain.
    """
    handle, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent
    )
    try:
        try:
            write_all(handle, data)
            os.fsync(handle)
        finally:
            os.close(handle)
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return False
    finally:
        os.unlink(tmp_name)
    fsync_directory(path.parent)
    return True


def remove_temp_files(directory: Path, name: str | None = None) -> list[Path]:
    """Remove what interrupted `write_atomic` calls left in `directory`; return it.

    With `name`, only the temporary files of that one file are removed, so that a
    directory shared with other writers keeps theirs. Only one writer of those files may
    be at work while this runs: its temporary file would be taken from under it.
    """
    pattern = f".{name}.*{TEMP_SUFFIX}" if name else f".*{TEMP_SUFFIX}"
    removed = [path for path in directory.glob(pattern) if path.is_file() and not path.is_symlink()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
