"""When a child server is ready: its address from its log, then SERVING from its health.

A server logs one ``serving`` line with the address it bound (the only way to learn the
port when 0 asked for any free one), and only then is its health service reachable;
SERVING means its own readiness check passed (the database answers, Ray has CPUs). A
child that exits while we wait is reported at once with the end of its log, instead of
waiting out the timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ofa_fleet.errors import FailedPreconditionError, UnavailableError
from ofa_fleet.serving.client import open_channel
from ofa_fleet.stack.processes import ChildProcess

POLL_SECONDS = 0.2
CHECK_TIMEOUT_SECONDS = 2.0


class ChildExitedError(FailedPreconditionError):
    """A server of the stack exited; the message names it, the log's end comes along."""

    def __init__(self, message: str, name: str, log_path: Path, log_tail: str) -> None:
        super().__init__(message)
        self.name = name
        self.log_path = log_path
        self.log_tail = log_tail


def child_exited(child: ChildProcess, code: int | None) -> ChildExitedError:
    return ChildExitedError(
        f"the {child.name} server exited with code {code}; its log: {child.log_path}",
        child.name,
        child.log_path,
        child.log_tail(),
    )


def wait_until_serving(
    child: ChildProcess, timeout_seconds: float, others: Sequence[ChildProcess] = ()
) -> str:
    """The address ``child`` serves on, once its health check answers SERVING.

    Raises `ChildExitedError` as soon as ``child`` or one of ``others`` (the servers
    started before it) exits.
    """
    deadline = time.monotonic() + timeout_seconds
    watched = [*others, child]
    while not (address := logged_address(child)):
        _pause(child, watched, deadline, "log its address")
    with open_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while not is_serving(stub):
            _pause(child, watched, deadline, f"answer SERVING on {address}")
    return address


def logged_address(child: ChildProcess) -> str:
    """The address in the last ``serving`` line of the child's log, or ""."""
    return logged_serving(child, "address")


def logged_metrics_address(child: ChildProcess) -> str:
    """Where the child serves /metrics (host:port), from its ``serving`` line, or ""."""
    return logged_serving(child, "metrics")


def logged_serving(child: ChildProcess, field: str) -> str:
    """``field`` of the last ``serving`` line that has it, or ""."""
    try:
        lines = child.log_path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    for line in reversed(lines):
        if '"serving"' not in line:
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("event") == "serving" and entry.get(field):
            return str(entry[field])
    return ""


def is_serving(stub: health_pb2_grpc.HealthStub) -> bool:
    try:
        response = stub.Check(health_pb2.HealthCheckRequest(), timeout=CHECK_TIMEOUT_SECONDS)
    except grpc.RpcError:
        return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def _pause(
    child: ChildProcess, watched: Sequence[ChildProcess], deadline: float, what: str
) -> None:
    for process in watched:
        code = process.exit_code()
        if code is not None:
            raise child_exited(process, code)
    if time.monotonic() > deadline:
        raise UnavailableError(
            f"the {child.name} server did not {what} in time; see its log {child.log_path}"
        )
    time.sleep(POLL_SECONDS)
