"""`ofa-fleet serve ...` as a real process, the way an operator starts it.

The server logs JSON lines on stderr; the helper reads them on a thread (so the pipe never
fills), learns the address from the "serving" line, and keeps every line for assertions.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from types import TracebackType
from typing import Any

START_TIMEOUT_S = 300.0  # a search server loads a supernet and warms Ray; a loaded CI is slow
OPERATOR_TOKEN = "operator-token-for-tests-0123456789"


class ServerProcess:
    """`ofa-fleet serve SERVICE ARGS...` on a free loopback port."""

    def __init__(self, service: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = [
            sys.executable, "-m", "ofa_fleet.cli.main", "serve", service,
            "--port", "0", "--grace-seconds", "5", *args,
        ]  # fmt: skip
        self.env = {
            **os.environ,
            "OFA_FLEET_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "OMP_NUM_THREADS": "1",
            **(env or {}),
        }
        self.lines: list[str] = []
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.process: subprocess.Popen[str] | None = None
        self.address = ""

    def start(self) -> ServerProcess:
        self.process = subprocess.Popen(
            self.args,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=self.env,
            start_new_session=True,  # `kill` takes what it started with it (Ray's processes)
        )
        threading.Thread(target=self._read, daemon=True).start()
        try:
            serving = self.wait_for("serving", START_TIMEOUT_S)
        except BaseException:
            self.kill()  # `with` never reaches __exit__ when __enter__ raises
            raise
        self.address = serving["address"]
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            try:
                self._events.put(json.loads(line))
            except json.JSONDecodeError:
                self._events.put({"event": "text", "line": line})
        self._events.put({"event": "exited"})

    def wait_for(self, event: str, timeout: float) -> dict[str, Any]:
        while True:
            try:
                entry = self._events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {event!r} log line; log so far:\n{self.log}") from None
            if entry.get("event") == event:
                return entry
            if entry.get("event") == "exited":
                raise AssertionError(f"server exited before {event!r}:\n{self.log}")

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
