"""`ofa-fleet serve registry` as a real process, and what its durability tests do to it.

The server logs JSON lines on stderr; the helper reads them on a thread (so the pipe never
fills), learns the address from the "serving" line, and keeps every line for assertions.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from ofa_fleet.registry.store import RegistryStore
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.registry.server_thread import bearer
from tests.server_process import ServerProcess


class RegistryProcess(ServerProcess):
    def __init__(self, db_url: str, *extra: str, env: dict[str, str] | None = None) -> None:
        super().__init__("registry", "--db", db_url, *extra, env=env)

    def start(self) -> RegistryProcess:
        super().start()
        return self

    def __enter__(self) -> RegistryProcess:
        return self.start()


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
