"""One process per directory, enforced by an `flock` on a lock file inside it.

Two processes sharing a state directory corrupt it: two agents would enrol twice and
append the same download from two streams; two `ofa-fleet up` on one workdir would run
two registries on one SQLite file and truncate each other's logs. The lock is an
advisory `flock` held for the life of the process: the kernel releases it when the
process ends however it ends (even `kill -9`), so a crash never leaves a stale lock that
someone must remove by hand, as a PID file would. The holder writes its pid into the
file so that the refusal can name it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from ofa_fleet.errors import FailedPreconditionError


class DirectoryLock:
    """An exclusive hold on a directory; `acquire` or fail at once, never wait.

    ``holder``: what holds it, for the refusal ("agent"); ``remedy``: what the refused
    user can do ("stop it or give this one another --state").
    """

    def __init__(self, directory: Path, lock_name: str, holder: str, remedy: str) -> None:
        self.path = Path(directory) / lock_name
        self.holder = holder
        self.remedy = remedy
        self._handle: int | None = None

    def acquire(self) -> DirectoryLock:
        """Take the lock, or raise `FailedPreconditionError` naming the holder's pid."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(handle)
            os.close(handle)
            raise FailedPreconditionError(
                f"{self.path.parent} is in use by another {self.holder}"
                f"{f' (pid {pid})' if pid else ''}: {self.remedy}",
                reason="DIRECTORY_IN_USE",
                facts={"pid": str(pid or "")},
            ) from None
        except BaseException:
            os.close(handle)
            raise
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            os.close(self._handle)  # closing the only descriptor releases the flock
            self._handle = None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(handle: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(handle, 32, 0).decode().strip())
    return None
