"""RegisterDevice and Heartbeat under concurrent load, and what a kill -9 leaves behind.

1. THROUGHPUT. The registry runs as its own process (`ofa-fleet serve registry`), on an
   SQLite file and on PostgreSQL (this machine's server, a schema of its own). One client
   process keeps ``--concurrency`` calls in flight for ``--seconds`` per measurement:
   RegisterDevice (a write, a new device and its change each), then Heartbeat (each
   in-flight slot beats for its own device). The ceiling is a bare `grpc.aio` server in a
   process of its own that implements the same two methods with a constant answer: no
   interceptor, no authentication, no database. Each row prints calls/s, p50 and p99
   latency, and calls/s as a share of the ceiling measured in the same run.
2. DURABILITY. The registry is killed with SIGKILL while 8 threads enrol devices; after a
   restart every acknowledged registration is looked up. Printed: acknowledged, found,
   lost, and devices whose row or change-feed entry is missing (half-written).

On two cores the client and the server share the machine, so absolute figures are lower
than on a server with its own cores; the ratio to the ceiling is the comparable figure.

Run (about 2 minutes)::

    .venv/bin/python bench/registry_load.py [--seconds 5] [--concurrency 64] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
from grpc import aio
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ofa_fleet.registry import convert  # noqa: E402
from ofa_fleet.registry.migrations import REGISTRY_MIGRATIONS  # noqa: E402
from ofa_fleet.registry.records import ChangeKind  # noqa: E402
from ofa_fleet.registry.store import RegistryStore  # noqa: E402
from ofa_fleet.storage.database import Database, DatabaseUrl  # noqa: E402
from ofa_fleet.v1 import registry_pb2 as pb  # noqa: E402
from ofa_fleet.v1 import registry_pb2_grpc  # noqa: E402
from tests.databases import postgres_schema  # noqa: E402
from tests.registry.conftest import example_profile  # noqa: E402
from tests.registry.server_process import (  # noqa: E402
    RegistryProcess,
    all_device_ids,
    kill_during_enrolment,
)
from tests.registry.server_thread import OPERATOR_TOKEN, bearer  # noqa: E402

OPERATOR = bearer(OPERATOR_TOKEN)


class ConstantRegistry(registry_pb2_grpc.RegistryServiceServicer):
    """The ceiling: the same two methods answering a constant, nothing else."""

    async def RegisterDevice(self, request, context):  # noqa: N802
        return pb.RegisterDeviceResponse(
            device=pb.Device(
                name="fleets/bench/devices/d-00000000000000000000",
                id="d-00000000000000000000",
                fleet="bench",
            ),
            device_token="t",
        )

    async def Heartbeat(self, request, context):  # noqa: N802
        return pb.HeartbeatResponse()


async def serve_constant(port: int) -> None:
    server = aio.server()
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(ConstantRegistry(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


@contextlib.contextmanager
def constant_server() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, __file__, "--serve-constant", str(port)])
    address = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        yield address
    finally:
        process.kill()
        process.wait()


def prepare(address: str) -> str:
    """A profile and a fleet; returns the fleet's enrolment token."""
    with grpc.insecure_channel(address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        spec = convert.profile_to_proto(example_profile())
        stub.CreateProfile(pb.CreateProfileRequest(profile=spec), metadata=OPERATOR, timeout=30)
        return stub.CreateFleet(
            pb.CreateFleetRequest(
                fleet_id="bench", fleet=pb.Fleet(profile=f"profiles/{spec.name}")
            ),
            metadata=OPERATOR,
            timeout=30,
        ).enrolment_token


async def load(address: str, enrolment: str, concurrency: int, seconds: float) -> list[dict]:
    """RegisterDevice, then Heartbeat, each for `seconds` with `concurrency` in flight."""
    results = []
    async with aio.insecure_channel(address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        identities: list[tuple[str, str]] = []

        async def register(slot: int) -> None:
            answer = await stub.RegisterDevice(
                # With a request_id, as the agent enrols: a retry gets the same device.
                pb.RegisterDeviceRequest(hardware_id=f"bench-{slot}", request_id=str(uuid.uuid4())),
                metadata=bearer(enrolment),
                timeout=30,
            )
            if len(identities) < concurrency:
                identities.append((answer.device.name, answer.device_token))

        async def heartbeat(slot: int) -> None:
            device, token = identities[slot % len(identities)]
            await stub.Heartbeat(
                pb.HeartbeatRequest(name=device), metadata=bearer(token), timeout=30
            )

        for name, call in (("RegisterDevice", register), ("Heartbeat", heartbeat)):
            results.append({"call": name, **await _drive(call, concurrency, seconds)})
    return results


async def _drive(call, concurrency: int, seconds: float) -> dict:  # type: ignore[no-untyped-def]
    """Keep `concurrency` calls in flight for `seconds`; calls/s and latency percentiles."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(slot: int) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                await call(slot)
            except grpc.RpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(slot) for slot in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "calls_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "errors": errors,
    }


def measure_registry(db_url: str, concurrency: int, seconds: float) -> list[dict]:
    with RegistryProcess(db_url) as server:
        return asyncio.run(load(server.address, prepare(server.address), concurrency, seconds))


def durability(db_url: str) -> dict[str, int]:
    with RegistryProcess(db_url) as server, grpc.insecure_channel(server.address) as channel:
        token = prepare(server.address)
        started = time.monotonic()
        acknowledged = kill_during_enrolment(
            server,
            registry_pb2_grpc.RegistryServiceStub(channel),
            token,
            lambda _: time.monotonic() - started > 3.0,
        )
    database = Database(DatabaseUrl.parse(db_url), REGISTRY_MIGRATIONS)
    try:
        store = RegistryStore(database)
        stored = all_device_ids(store)
        changes = {
            c.entity_id
            for c in store.changes_after(0, limit=1_000_000)
            if c.kind is ChangeKind.DEVICE
        }
    finally:
        database.close()
    return {
        "acknowledged": len(acknowledged),
        "found": len(set(acknowledged) & stored),
        "lost": len(set(acknowledged) - stored),
        "stored_total": len(stored),
        "half_written": len(stored ^ changes),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--serve-constant", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_constant:
        asyncio.run(serve_constant(args.serve_constant))
        return 0
    os.environ.setdefault("OFA_FLEET_OPERATOR_TOKEN", OPERATOR_TOKEN)
    console = Console()
    rows: list[tuple[str, dict]] = []
    with constant_server() as address:
        rows += [
            ("ceiling", r) for r in asyncio.run(load(address, "t", args.concurrency, args.seconds))
        ]
    ceiling = {r["call"]: r["calls_per_s"] for _, r in rows}
    backends: list[tuple[str, contextlib.AbstractContextManager[str]]] = []
    folder = Path(tempfile.mkdtemp(prefix="ofa-fleet-bench-"))
    backends.append(("sqlite", contextlib.nullcontext(f"sqlite:///{folder / 'registry.db'}")))
    if not args.no_postgres:
        backends.append(("postgresql", postgres_schema()))
    durable: dict[str, dict[str, int]] = {}
    for name, url_context in backends:
        with url_context as url:
            rows += [(name, r) for r in measure_registry(url, args.concurrency, args.seconds)]
        with (
            contextlib.nullcontext(f"sqlite:///{folder / 'durability.db'}")
            if name == "sqlite"
            else postgres_schema()
        ) as url:
            durable[name] = durability(url)
    table = Table(
        title=f"registry load: {args.concurrency} calls in flight, {args.seconds:.0f} s each"
    )
    for column in ("server", "call", "calls/s", "p50 ms", "p99 ms", "errors", "vs ceiling"):
        table.add_column(column, justify="right")
    for server, r in rows:
        table.add_row(
            server,
            r["call"],
            f"{r['calls_per_s']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            str(r["errors"]),
            f"{r['calls_per_s'] / ceiling[r['call']]:.3f}",
        )
    console.print(table)
    table = Table(title="kill -9 during a burst of RegisterDevice (8 client threads)")
    for column in ("backend", "acknowledged", "found after restart", "lost", "half-written"):
        table.add_column(column, justify="right")
    for name, d in durable.items():
        table.add_row(
            name, str(d["acknowledged"]), str(d["found"]), str(d["lost"]), str(d["half_written"])
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
