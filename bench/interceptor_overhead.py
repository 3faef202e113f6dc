"""What the shared interceptor costs per call: Heartbeat, GetModelManifest and ReadModel
with and without it.

Four servers of each service run the same servicer over the same SQLite store, on
loopback, in this process:

- ``bare``: no interceptor at all. Nothing checks the caller (for GetModelManifest the
  device is taken from the request, since the servicer needs to know who asks); no gRPC
  metrics, no service metrics, no call log.
- ``auth``: the interceptor with its token check, access rule and error mapping, the
  call log off.
- ``auth+metrics``: the above plus the standard gRPC metrics and the service's own
  (models served, bytes, reports).
- ``auth+metrics+log``: what `ofa-fleet serve` runs at its default ``--log-level info``:
  the above with each call's JSON log line formatted and written (to the null device,
  so that no terminal or pipe is measured).

A client process (``--client``, this script again, so client and servers do not share a
GIL) keeps ``--concurrency`` calls in flight for ``--seconds`` and counts the calls that
completed, while this process counts the CPU seconds its servers spent. GetModelManifest
asks with the sha256 the device already has ("up to date": the smallest device call);
ReadModel reads a whole ``--model-kib`` model.

Heartbeat's cost varies with the size of the group commits its load happens to form, so
a fourth case serves Heartbeat with a constant answer (no database) behind each variant:
what a variant adds there, in CPU µs per call, is the interceptor's own cost, and "share
of CPU" puts it beside each real call's CPU (bare CPU + that cost). The variants run in
interleaved rounds, ``--rounds`` times, and each keeps its best round (most calls/s,
least CPU per call): a loaded machine can only make a variant slower, never faster.

Last, the constant-answer Heartbeat is called in this process, without gRPC, through each
variant's interceptor as gRPC runs it per call: the interceptor's own code, free of the
loopback's noise, set against the bare server's CPU per call.

Run (about three minutes)::

    .venv/bin/python bench/interceptor_overhead.py [--seconds 4] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import grpc
from google.protobuf import duration_pb2
from grpc import aio
from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ofa_fleet.delivery.service import delivery_service  # noqa: E402
from ofa_fleet.delivery.signing import ModelSigner  # noqa: E402
from ofa_fleet.delivery.store.model_store import ModelStore  # noqa: E402
from ofa_fleet.hardware.profile_file import load_profile  # noqa: E402
from ofa_fleet.hardware.profile_proto import profile_to_proto  # noqa: E402
from ofa_fleet.registry.migrations import REGISTRY_MIGRATIONS  # noqa: E402
from ofa_fleet.registry.service import registry_authenticator, registry_service  # noqa: E402
from ofa_fleet.serving.access import Principal, Role, set_current_principal  # noqa: E402
from ofa_fleet.serving.channel_options import SERVER_OPTIONS  # noqa: E402
from ofa_fleet.serving.client import bearer  # noqa: E402
from ofa_fleet.serving.grpc_metrics import GrpcServerMetrics  # noqa: E402
from ofa_fleet.serving.interceptor import CallInterceptor  # noqa: E402
from ofa_fleet.serving.interceptor import log as call_log  # noqa: E402
from ofa_fleet.serving.logs import JsonFormatter  # noqa: E402
from ofa_fleet.storage.database import Database, DatabaseUrl  # noqa: E402
from ofa_fleet.v1 import (  # noqa: E402
    delivery_pb2,
    delivery_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
)
from tests.delivery.conftest import blob_store, manifest_for, model_bytes, open_database  # noqa: E402

CONSTANT = "Heartbeat, constant answer"
VARIANTS = ("bare", "auth", "auth+metrics", "auth+metrics+log")
TOKEN = "operator-token-for-the-overhead-bench-000000"
PROFILE = ROOT / "deploy" / "profiles" / "raspberry-pi-4.yaml"
DURATION = duration_pb2.Duration(seconds=30)


class ConstantHeartbeat(registry_pb2_grpc.RegistryServiceServicer):
    """Heartbeat with a constant answer: no database, so that what the interceptor adds
    is not lost in the noise of group commits whose size varies from run to run."""

    async def Heartbeat(self, request: Any, context: Any) -> Any:  # noqa: N802
        return registry_pb2.HeartbeatResponse(heartbeat_interval=DURATION)


class UncheckedDelivery:
    """Delivery's servicer with the caller taken from the request: the ``bare`` baseline."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def GetModelManifest(self, request: Any, context: Any) -> Any:  # noqa: N802
        set_current_principal(Principal(Role.DEVICE, request.device))
        return await self._inner.GetModelManifest(request, context)

    async def ReadModel(self, request: Any, context: Any) -> Any:  # noqa: N802
        # Nobody is checked here; as an operator's read, nothing follows revocations either.
        set_current_principal(Principal(Role.OPERATOR))
        async for response in self._inner.ReadModel(request, context):
            yield response


async def serve(
    variant: str,
    register: Callable[[aio.Server], None],
    rules: Any,
    authenticator: Any,
    metrics: CollectorRegistry | None,
) -> tuple[aio.Server, str, CallInterceptor | None]:
    interceptors = []
    if variant != "bare":
        grpc_metrics = GrpcServerMetrics(metrics) if metrics is not None else None
        interceptors.append(CallInterceptor(rules, authenticator, grpc_metrics))
    server = aio.server(interceptors=interceptors, options=list(SERVER_OPTIONS))
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}", interceptors[0] if interceptors else None


async def start_servers(folder: Path, model_kib: int) -> dict[str, Any]:
    """The three variants of registry and delivery, a fleet, a device, a current model."""
    database = Database(
        DatabaseUrl.parse(f"sqlite:///{folder / 'registry.db'}"), REGISTRY_MIGRATIONS
    )
    await asyncio.to_thread(database.migrate)
    delivery_db = open_database(f"sqlite:///{folder / 'delivery.db'}")
    store = ModelStore(delivery_db, blob_store("files", delivery_db, folder / "blobs"))
    signer = ModelSigner.load_or_create(folder / "signing.key")
    servers: dict[str, Any] = {
        "registry": {},
        "constant": {},
        "delivery": {},
        "close": [],
        "interceptors": {},  # the constant answer's, by variant
    }
    for variant in VARIANTS:
        metrics = CollectorRegistry() if "metrics" in variant else None
        registry = registry_service(database, metrics=metrics)
        server, address, _ = await serve(
            variant,
            registry.service.register,
            registry.service.rules,
            registry_authenticator(TOKEN, registry),
            metrics,
        )
        servers["registry"][variant] = address
        servers["close"].append(server)
        server, address, interceptor = await serve(
            variant,
            lambda s: registry_pb2_grpc.add_RegistryServiceServicer_to_server(
                ConstantHeartbeat(), s
            ),
            registry.service.rules,
            registry_authenticator(TOKEN, registry),
            CollectorRegistry() if metrics is not None else None,
        )
        servers["constant"][variant] = address
        servers["interceptors"][variant] = interceptor
        servers["close"].append(server)
    # One registry (the full one) answers delivery's device-token checks (cached).
    registry_address = servers["registry"]["auth+metrics"]
    for variant in VARIANTS:
        metrics = CollectorRegistry() if "metrics" in variant else None
        delivery = delivery_service(store, signer, registry_address, TOKEN, metrics=metrics)
        servicer = delivery.servicer if variant != "bare" else UncheckedDelivery(delivery.servicer)
        server, address, _ = await serve(
            variant,
            lambda s, servicer=servicer: delivery_pb2_grpc.add_DeliveryServiceServicer_to_server(
                servicer, s
            ),
            delivery.service.rules,
            delivery.authenticator,
            metrics,
        )
        servers["delivery"][variant] = address
        servers["close"].append(server)

    async with aio.insecure_channel(registry_address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        profile = profile_to_proto(load_profile(PROFILE))
        await stub.CreateProfile(
            registry_pb2.CreateProfileRequest(profile=profile), metadata=bearer(TOKEN)
        )
        fleet = await stub.CreateFleet(
            registry_pb2.CreateFleetRequest(
                fleet_id="bench", fleet=registry_pb2.Fleet(profile=f"profiles/{profile.name}")
            ),
            metadata=bearer(TOKEN),
        )
        device = await stub.RegisterDevice(
            registry_pb2.RegisterDeviceRequest(hardware_id="bench-0"),
            metadata=bearer(fleet.enrolment_token),
        )
    data = model_bytes(7, model_kib * 1024)
    manifest = manifest_for(data, profile.name)
    store.add(manifest, signer.sign(manifest), data)
    store.set_current(profile.name, manifest.sha256, "missing")
    servers["device"] = device.device.name
    servers["device_token"] = device.device_token
    servers["sha256"] = manifest.sha256
    return servers


# ---------------------------------------------------------------------- the client side


async def load(spec: dict[str, Any]) -> int:
    """Calls completed in ``spec['seconds']`` with ``spec['concurrency']`` in flight."""
    metadata = bearer(spec["token"])
    deadline = time.monotonic() + spec["seconds"]
    done = 0
    async with aio.insecure_channel(spec["address"]) as channel:
        if spec["method"] == "Heartbeat":
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            request = registry_pb2.HeartbeatRequest(name=spec["device"])

            async def once() -> None:
                await stub.Heartbeat(request, metadata=metadata, timeout=30)

        elif spec["method"] == "GetModelManifest":
            delivery = delivery_pb2_grpc.DeliveryServiceStub(channel)
            manifest_request = delivery_pb2.GetModelManifestRequest(
                device=spec["device"], have_sha256=spec["sha256"]
            )

            async def once() -> None:
                await delivery.GetModelManifest(manifest_request, metadata=metadata, timeout=30)

        else:
            delivery = delivery_pb2_grpc.DeliveryServiceStub(channel)
            read_request = delivery_pb2.ReadModelRequest(sha256=spec["sha256"])

            async def once() -> None:
                async for _ in delivery.ReadModel(read_request, metadata=metadata, timeout=30):
                    pass

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await once()
                done += 1

        await once()  # connected and warm before the clock matters
        await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    return done


def run_client(spec: dict[str, Any]) -> tuple[float, float]:
    """Calls per second measured by a client process of its own, and the CPU seconds
    this process (the servers) spent per call meanwhile."""
    cpu = time.process_time()
    result = subprocess.run(
        [sys.executable, __file__, "--client", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=spec["seconds"] + 120,
    )
    if result.returncode != 0:
        raise SystemExit(f"client for {spec['address']} failed:\n{result.stderr[-3000:]}")
    calls = int(result.stdout.strip())
    return calls / spec["seconds"], (time.process_time() - cpu) / calls


class _Details:
    """What gRPC hands an interceptor about a call: its method."""

    method = "/ofa_fleet.v1.RegistryService/Heartbeat"


class _Context:
    """The little of a call's context the interceptor reads on a successful call."""

    def __init__(self, token: str) -> None:
        self._metadata = tuple(bearer(token))

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50000"


async def in_process_costs(servers: dict[str, Any], calls: int = 20_000) -> dict[str, float]:
    """µs per call of the constant-answer Heartbeat called in this process, no gRPC: the
    servicer alone (``bare``), and each variant's interceptor as gRPC runs it per call
    (`intercept_service`, then the handler it returns). Best of five: what the
    interceptor's own code costs, free of the loopback's noise."""
    servicer = ConstantHeartbeat()
    request = registry_pb2.HeartbeatRequest(name=servers["device"])
    context = _Context(servers["device_token"])
    handler = grpc.unary_unary_rpc_method_handler(servicer.Heartbeat)

    async def continuation(details: Any) -> grpc.RpcMethodHandler:
        return handler

    costs: dict[str, float] = {}
    for variant in VARIANTS:
        interceptor = servers["interceptors"][variant]
        log_calls(variant.endswith("+log"))

        async def once(interceptor: CallInterceptor | None = interceptor) -> None:
            if interceptor is None:
                await servicer.Heartbeat(request, context)
                return
            details = cast(grpc.HandlerCallDetails, _Details())
            wrapped = await interceptor.intercept_service(continuation, details)
            await cast(Any, wrapped).unary_unary(request, context)

        for _ in range(500):  # warm: the token cached, the method's handler built
            await once()
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(calls):
                await once()
            best = min(best, (time.perf_counter() - started) / calls)
        costs[variant] = best * 1e6
    return costs


def log_calls(on: bool) -> None:
    """Turn the call log on (JSON lines to the null device) or off, for the next run."""
    call_log.setLevel(logging.INFO if on else logging.WARNING)


def measure(
    args: argparse.Namespace, servers: dict[str, Any]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    cases = {
        CONSTANT: ("constant", "Heartbeat"),
        "Heartbeat": ("registry", "Heartbeat"),
        "GetModelManifest up to date": ("delivery", "GetModelManifest"),
        f"ReadModel {args.model_kib} KiB": ("delivery", "ReadModel"),
    }
    best: dict[str, dict[str, float]] = {case: {} for case in cases}
    cpu: dict[str, dict[str, float]] = {case: {} for case in cases}
    for _ in range(args.rounds):
        for case, (service, method) in cases.items():
            for variant in VARIANTS:
                spec = {
                    "address": servers[service][variant],
                    "method": method,
                    "sha256": servers["sha256"],
                    "device": servers["device"],
                    "token": servers["device_token"],
                    "seconds": args.seconds,
                    "concurrency": args.concurrency,
                }
                log_calls(variant.endswith("+log"))
                rate, seconds = run_client(spec)
                best[case][variant] = max(best[case].get(variant, 0.0), rate)
                cpu[case][variant] = min(cpu[case].get(variant, float("inf")), seconds)
    return best, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--model-kib", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(asyncio.run(load(json.loads(args.client))))
        return
    null = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the run)
    null.setFormatter(JsonFormatter())
    call_log.addHandler(null)
    call_log.propagate = False
    with tempfile.TemporaryDirectory() as folder:
        loop = asyncio.new_event_loop()
        servers = loop.run_until_complete(start_servers(Path(folder), args.model_kib))
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            best, cpu = measure(args, servers)
            direct = asyncio.run_coroutine_threadsafe(in_process_costs(servers), loop).result()
        finally:
            for server in servers["close"]:
                asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
    # What each variant adds per call, from the constant answer (where nothing else
    # varies), as a share of each real call's CPU once it is added.
    added = {v: cpu[CONSTANT][v] - cpu[CONSTANT]["bare"] for v in VARIANTS[1:]}
    rows = [
        {
            "call": case,
            **{f"{v} calls/s": round(rates[v], 1) for v in VARIANTS},
            **{f"{v}/bare": round(rates[v] / rates["bare"], 3) for v in VARIANTS[1:]},
            **{f"{v} CPU µs/call": round(cpu[case][v] * 1e6, 1) for v in VARIANTS},
            **{
                f"{v} share of CPU": round(added[v] / (cpu[case]["bare"] + added[v]), 3)
                for v in VARIANTS[1:]
            },
        }
        for case, rates in best.items()
    ]
    # The interceptor's own code per call, measured in process, beside the CPU a bare
    # server spent per constant-answer call over gRPC.
    in_process = {
        **{f"{v} µs/call in process": round(direct[v], 2) for v in VARIANTS},
        **{
            f"{v} in process, share of the bare server's CPU": round(
                (direct[v] - direct["bare"]) / (cpu[CONSTANT]["bare"] * 1e6), 4
            )
            for v in VARIANTS[1:]
        },
    }
    if args.json:
        print(
            json.dumps(
                {"rows": rows, "in_process": in_process, "concurrency": args.concurrency},
                indent=1,
            )
        )
        return
    # One row per figure, one column per call: the figures outnumber the calls.
    table = Table(title=f"interceptor overhead ({args.concurrency} calls in flight, best round)")
    table.add_column("figure")
    for row in rows:
        table.add_column(row["call"], justify="right")
    for figure in list(rows[0])[1:]:
        table.add_row(figure, *(str(row[figure]) for row in rows))
    console = Console(width=120)
    console.print(table)
    console.print(
        f"{CONSTANT}, the interceptor's own code called in process (no gRPC), "
        f"against the bare server's {cpu[CONSTANT]['bare'] * 1e6:.1f} CPU µs per call:"
    )
    for figure, value in in_process.items():
        console.print(f"  {figure}: {value}")


if __name__ == "__main__":
    main()
