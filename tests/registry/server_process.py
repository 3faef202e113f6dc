"""`ofa-fleet serve registry` as a real process, the way an operator starts it.

The server logs JSON lines on stderr; the helper reads them on a thread (so the pipe never
fills), learns the address from the "serving" line, and keeps every line for assertions.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from ofa_fleet.registry.store import RegistryStore
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.registry.server_thread import OPERATOR_TOKEN, bearer

START_TIMEOUT_S = 90.0


class RegistryProcess:
    def __init__(self, db_url: str, *extra: str, env: dict[str, str] | None = None) -> None:
        self.args = [
            sys.executable, "-m", "ofa_fleet.cli.main", "serve", "registry",
            "--port", "0", "--db", db_url, "--grace-seconds", "5", *extra,
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

    def start(self) -> RegistryProcess:
        self.process = subprocess.Popen(
            self.args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=self.env
        )
        threading.Thread(target=self._read, daemon=True).start()
        serving = self.wait_for("serving", START_TIMEOUT_S)
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
        self.process.kill()
        self.process.wait(timeout=30)

    def __enter__(self) -> RegistryProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'registry.db'}"


def kill_during_enrolment(
    server: RegistryProcess,
    stub: RegistryServiceStub,
    enrolment_token: str,
    kill_when: Callable[[list[str]], bool],
    workers: int = 8,
    give_up_after_s: float = 60.0,
) -> list[str]:
    """Enrol devices from `workers` threads, SIGKILL the server once `kill_when(acknowledged)`.

    Returns the ids of every registration the server acknowledged before it died.
    """
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def enrol(worker: int) -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            try:
                answer = stub.RegisterDevice(
                    pb.RegisterDeviceRequest(hardware_id=f"w{worker}-{i}"),
                    metadata=bearer(enrolment_token),
                    timeout=10,
                )
            except grpc.RpcError:
                return
            with lock:
                acknowledged.append(answer.device.id)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(enrol, w) for w in range(workers)]
        deadline = time.monotonic() + give_up_after_s
        while not kill_when(acknowledged) and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        stop.set()
        for future in futures:
            future.result(timeout=30)
    return acknowledged


def all_device_ids(store: RegistryStore) -> set[str]:
    ids: set[str] = set()
    token = ""
    while True:
        page = store.list_devices(page_size=1000, page_token=token)
        ids |= {d.id for d in page.items}
        token = page.next_token
        if not token:
            return ids
