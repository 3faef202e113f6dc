"""One server as a child process: started, logged to a file, stopped without leftovers.

Each child runs in a session of its own, so a Ctrl-C in the terminal reaches only the
parent, which then stops the children in order instead of all of them racing to exit.
What a child starts itself (search's local Ray: a GCS server, a raylet, workers, some in
process groups of their own) stays in that session, so once the child is gone whatever
is left of its session is killed too: nothing outlives a stop, even a child that had to
be killed. On Linux a child is also told to
terminate when its parent dies (``PR_SET_PDEATHSIG``), so a parent killed with SIGKILL
leaves no servers behind either. That signal follows the *thread* that started the
child, so start children from a thread that outlives them (the main thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1
LOG_TAIL_LINES = 15
PROC = Path("/proc")


class ChildProcess:
    """A named command whose stdout and stderr go to ``log_path``."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str]
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:  # a fresh log: no stale "serving" line
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                preexec_fn=_terminate_with_parent(os.getpid()),
            )

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._process.pid

    def exit_code(self) -> int | None:
        """None while it runs (or was never started), else its exit code."""
        return None if self._process is None else self._process.poll()

    def stop(self, grace_seconds: float) -> int | None:
        """SIGTERM, ``grace_seconds`` to exit, then SIGKILL; then its leftovers are killed.

        Returns the exit code (negative: the signal that ended it), None if never started.
        """
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                _kill_session(process.pid)
                process.wait()
        # What the child started and left running is still in its session.
        _kill_session(process.pid)
        return process.returncode

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _kill_session(sid: int) -> None:
    """SIGKILL every process of session ``sid``, and wait (briefly) until they are gone."""
    if not PROC.is_dir():  # no /proc to list the session: its process group, at least
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, signal.SIGKILL)
        return
    deadline = time.monotonic() + 5.0
    while (members := session_members(sid)) and time.monotonic() < deadline:
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``, from /proc."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _terminate_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when its parent dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None

    def arrange() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return arrange
