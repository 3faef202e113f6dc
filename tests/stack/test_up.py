"""`ofa-fleet up` as an operator runs it: three servers, a clean stop, nothing left behind."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.stack.processes import alive, command_line, descendants

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SERVICES = {
    "registry": "ofa_fleet.v1.RegistryService",
    "search": "ofa_fleet.v1.SearchService",
    "delivery": "ofa_fleet.v1.DeliveryService",
}


class Up:
    """`ofa-fleet up --json` on free ports; its stdout lines arrive through a queue."""

    def __init__(
        self, workdir: Path, checkpoint: Path, *ports: str, sigint_ignored: bool = False
    ) -> None:
        ports = ports or ("--registry-port", "0", "--search-port", "0", "--delivery-port", "0")
        # As a shell starts a background job (`up &`): SIGINT ignored, and inherited.
        ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "ofa_fleet.cli.main", "up", "--json"),
                *("--workdir", str(workdir), "--checkpoint", str(checkpoint), *ports),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"},
            preexec_fn=ignore_sigint if sigint_ignored else None,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.seen: set[int] = set()  # every process ever found below it

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def ready(self, timeout: float = 300.0) -> dict[str, str]:
        line = self.lines.get(timeout=timeout)
        assert line, f"up exited before it was ready:\n{self.stderr()}"
        return json.loads(line)

    def look(self) -> set[int]:
        self.seen |= descendants(self.process.pid)
        return self.seen

    def wait(self, timeout: float) -> int:
        """Its exit code; meanwhile every process it had is noted."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            assert time.monotonic() < deadline, "up did not exit"
            self.look()
            time.sleep(0.2)
        return self.process.returncode

    def stderr(self) -> str:
        assert self.process.stderr is not None
        if self.process.poll() is None:
            return "(still running)"
        return self.process.stderr.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in alive(self.seen):
            os.kill(pid, signal.SIGKILL)


def serving(address: str, service: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        return stub.Check(request, timeout=10).status == health_pb2.HealthCheckResponse.SERVING


def test_up_serves_refuses_a_second_up_on_its_workdir_and_sigint_stops_every_process(
    stack_checkpoint: Path, tmp_path: Path
) -> None:
    up = Up(tmp_path, stack_checkpoint, sigint_ignored=True)
    try:
        ready = up.ready()
        for name, service in SERVICES.items():
            assert serving(ready[name], service), name
        assert len({ready[name] for name in SERVICES}) == 3
        token_file = Path(ready["operator_token_file"])
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert len(token_file.read_text().strip()) == 64
        below = up.look()
        lines = [command_line(pid) for pid in below]
        for name in SERVICES:
            assert sum(f"serve {name}" in line for line in lines) == 1, lines
        assert any("raylet" in line for line in lines), "search runs a local Ray"

        logs = {log: log.read_bytes() for log in (tmp_path / "logs").glob("*.log")}
        second = Up(tmp_path, stack_checkpoint)
        try:
            assert second.wait(60) == 2
            assert f"in use by another ofa-fleet up (pid {up.process.pid})" in second.stderr()
        finally:
            second.kill()
        for log, before in logs.items():  # the running stack's logs, untouched
            assert log.read_bytes().startswith(before), log

        up.process.send_signal(signal.SIGINT)  # though started with SIGINT ignored
        assert up.wait(120) == 0, up.stderr()
        assert alive(up.seen) == set(), [command_line(pid) for pid in alive(up.seen)]
    finally:
        up.kill()


def test_a_server_that_dies_stops_up_naming_it(stack_checkpoint: Path, tmp_path: Path) -> None:
    up = Up(tmp_path, stack_checkpoint)
    try:
        # As soon as the registry serves, while search may still be starting Ray.
        log = tmp_path / "logs" / "registry.log"
        deadline = time.monotonic() + 120
        while not (log.exists() and '"serving"' in log.read_text()):
            assert time.monotonic() < deadline and up.process.poll() is None, up.stderr()
            time.sleep(0.2)
        (registry,) = [pid for pid in up.look() if "serve registry" in command_line(pid)]
        os.kill(registry, signal.SIGKILL)

        assert up.wait(120) != 0
        stderr = up.stderr()
        assert "the registry server exited with code -9" in stderr
        assert alive(up.seen) == set(), [command_line(pid) for pid in alive(up.seen)]
    finally:
        up.kill()


def test_a_busy_port_is_named_before_anything_starts(
    stack_checkpoint: Path, tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        up = Up(tmp_path, stack_checkpoint, "--search-port", str(port))
        try:
            assert up.wait(60) == 2
            stderr = up.stderr()
            assert f"port {port} on 127.0.0.1 (for the search) is in use" in stderr
            assert "--search-port" in stderr
            assert not (tmp_path / "logs").exists()  # no server was started
        finally:
            up.kill()
