"""Model downloads under load: a lean client, and a bare server to compare delivery against.

``client``: one process, one `grpc.aio` channel (one HTTP/2 connection), ``--concurrency``
workers, each with its own device token, each downloading again and again as a device
does (``GetModelManifest``, then ``ReadModel`` of the sha256 it names): it reads the
manifest, hashes the chunks as they arrive and checks the sha256 at the end,
nothing else (no disk, no signature, no onnxruntime), so that what limits it is the
server or the transport, not the agent. It first warms up (one download per worker: the
server's token cache and connection settle), prints ``ready`` on stdout, waits for
``go`` on stdin (so that several client processes start together), then counts for
``--seconds`` and prints one JSON object: chunk bytes received in the window, downloads
completed and verified, their latencies, failures.

``--mode url`` is artifact mode: the manifest from delivery over gRPC as above, the bytes
from the first of its ``download_urls`` (nginx serving delivery's blob folder) over one
keep-alive HTTP/1.1 connection per worker, hashed and checked the same way. ``--mode
http --url URL`` fetches that URL alone (no manifest): what the same clients get from the
HTTP server, the baseline artifact mode is measured against.

``bare-server``: a `grpc.aio` server with the same ``GetModelManifest`` and ``ReadModel``
and the same server options, streaming the same bytes from memory in the same chunk size, with no
interceptors, no authentication and no store: what gRPC in Python gives when delivery's
own work costs nothing. It logs a JSON "serving" line with its address on stderr, as the
services do.

Both are started by ``bench/delivery_fleet.py``; by hand::

    .venv/bin/python bench/getmodel_load.py bare-server --model FILE --chunk-bytes 65536
    .venv/bin/python bench/getmodel_load.py client --target ADDR --devices DEVICES.json \\
        --concurrency 500 --seconds 10 --sha256 HEX
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from grpc import aio

from ofa_fleet.serving.channel_options import CLIENT_OPTIONS, SERVER_OPTIONS
from ofa_fleet.serving.client import bearer
from ofa_fleet.v1 import common_pb2, delivery_pb2, delivery_pb2_grpc

WARMUP_TIMEOUT_S = 300.0
CALL_TIMEOUT_S = 120.0
READ_BYTES = 256 * 1024


class Counters:
    def __init__(self) -> None:
        self.counting = False
        self.bytes = 0
        self.downloads = 0
        self.verified = 0
        self.failures: dict[str, int] = {}
        self.seconds: list[float] = []

    def fail(self, error: str) -> None:
        self.failures[error] = self.failures.get(error, 0) + 1


class HttpConnection:
    """One keep-alive HTTP/1.1 connection a worker holds to the blob server: a GET, the
    status line, the headers, then exactly Content-Length body bytes. Lean on purpose (no
    pool, no redirects, no chunked bodies): a static file server answers this way."""

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.origin: tuple[str, int] | None = None

    async def get(self, url: str, digest: Any, counters: Counters) -> None:
        parts = urlsplit(url)
        origin = (parts.hostname or "", parts.port or 80)
        if self.writer is None or self.origin != origin:
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(*origin)
            self.origin = origin
        assert self.reader is not None
        try:
            self.writer.write(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
            status = (await self.reader.readline()).split(b" ", 2)
            length = -1
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(status) < 2 or status[1] != b"200" or length < 0:
                raise ConnectionError(f"HTTP {status[1:2]!r} with Content-Length {length}")
            while length > 0:
                data = await self.reader.read(min(length, READ_BYTES))
                if not data:
                    raise ConnectionError("the HTTP server closed the connection mid-body")
                digest.update(data)
                length -= len(data)
                if counters.counting:
                    counters.bytes += len(data)
        except BaseException:
            await self.close()  # mid-response: the connection cannot be reused
            raise

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


class Downloads:
    """How one worker downloads in ``--mode``: each download hashed, True when it checks
    out against ``sha256``."""

    def __init__(
        self, stub: delivery_pb2_grpc.DeliveryServiceStub, args: argparse.Namespace
    ) -> None:
        self.stub = stub
        self.mode = args.mode
        self.url = args.url
        self.sha256 = args.sha256

    async def one(self, device: tuple[str, str], http: HttpConnection, counters: Counters) -> bool:
        name, token = device
        digest = hashlib.sha256()
        if self.mode == "http":
            await http.get(self.url, digest, counters)
            return digest.hexdigest() == self.sha256
        answer = await self.stub.GetModelManifest(
            delivery_pb2.GetModelManifestRequest(device=name),
            metadata=bearer(token),
            timeout=CALL_TIMEOUT_S,
        )
        if self.mode == "url":
            if not answer.manifest.download_urls:
                raise ConnectionError("the manifest names no download URL")
            await http.get(answer.manifest.download_urls[0], digest, counters)
            return digest.hexdigest() == self.sha256
        call = self.stub.ReadModel(
            delivery_pb2.ReadModelRequest(sha256=answer.manifest.sha256),
            metadata=bearer(token),
            timeout=CALL_TIMEOUT_S,
        )
        async for message in call:
            data = message.chunk.data
            digest.update(data)
            if counters.counting:
                counters.bytes += len(data)
        return digest.hexdigest() == self.sha256


async def worker(downloads: Downloads, device: tuple[str, str], counters: Counters) -> None:
    http = HttpConnection()
    try:
        while True:
            started = time.perf_counter()
            try:
                ok = await downloads.one(device, http, counters)
            except (aio.AioRpcError, OSError) as error:
                if counters.counting:
                    counters.fail(describe(error))
                await asyncio.sleep(0.1)
                continue
            if counters.counting:
                counters.downloads += 1
                counters.verified += ok
                counters.seconds.append(time.perf_counter() - started)
                if not ok:
                    counters.fail("sha256 mismatch")
    finally:
        await http.close()


def describe(error: BaseException) -> str:
    if isinstance(error, aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return f"{type(error).__name__}: {error}"


async def run_client(args: argparse.Namespace) -> dict[str, Any]:
    devices = [tuple(d) for d in json.loads(Path(args.devices).read_text())]
    if len(devices) < args.concurrency:
        raise SystemExit(f"{len(devices)} devices for {args.concurrency} workers")
    devices = devices[args.first_device : args.first_device + args.concurrency]
    counters = Counters()
    async with aio.insecure_channel(args.target, options=CLIENT_OPTIONS) as channel:
        downloads = Downloads(delivery_pb2_grpc.DeliveryServiceStub(channel), args)
        warm_connections = [HttpConnection() for _ in devices]
        try:
            warm = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        downloads.one(d, http, counters)  # type: ignore[arg-type]
                        for d, http in zip(devices, warm_connections, strict=True)
                    ),
                    return_exceptions=True,
                ),
                WARMUP_TIMEOUT_S,
            )
        finally:
            for http in warm_connections:
                await http.close()
        warm_failures = [str(w) for w in warm if w is not True]
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        counters.counting = True
        tasks = [
            asyncio.create_task(worker(downloads, d, counters))  # type: ignore[arg-type]
            for d in devices
        ]
        started = time.perf_counter()
        await asyncio.sleep(args.seconds)
        counters.counting = False
        elapsed = time.perf_counter() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "concurrency": len(devices),
        "seconds": elapsed,
        "bytes": counters.bytes,
        "downloads": counters.downloads,
        "verified": counters.verified,
        "download_seconds": sorted(counters.seconds),
        "failures": counters.failures,
        "warmup_failures": len(warm_failures),
        "warmup_error": warm_failures[0][:300] if warm_failures else "",
    }


class BareDelivery(delivery_pb2_grpc.DeliveryServiceServicer):
    """GetModelManifest and ReadModel with delivery's message shapes and chunking, and
    nothing else."""

    def __init__(self, model: bytes, chunk_bytes: int) -> None:
        self.model = model
        self.chunk_bytes = chunk_bytes
        self.manifest = delivery_pb2.ModelManifest(
            sha256=hashlib.sha256(model).hexdigest(),
            size_bytes=len(model),
            chunk_size=chunk_bytes,
        )

    async def GetModelManifest(  # noqa: N802
        self, request: delivery_pb2.GetModelManifestRequest, context: aio.ServicerContext
    ) -> delivery_pb2.GetModelManifestResponse:
        return delivery_pb2.GetModelManifestResponse(manifest=self.manifest)

    async def ReadModel(  # noqa: N802
        self, request: delivery_pb2.ReadModelRequest, context: aio.ServicerContext
    ) -> Any:
        view = memoryview(self.model)
        offset = request.read_offset
        while offset < len(self.model):
            data = bytes(view[offset : offset + self.chunk_bytes])
            yield delivery_pb2.ReadModelResponse(
                chunk=common_pb2.ModelChunk(offset=offset, data=data)
            )
            offset += len(data)


async def run_bare_server(args: argparse.Namespace) -> None:
    server = aio.server(options=SERVER_OPTIONS)
    delivery_pb2_grpc.add_DeliveryServiceServicer_to_server(
        BareDelivery(Path(args.model).read_bytes(), args.chunk_bytes), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(json.dumps({"event": "serving", "address": f"127.0.0.1:{port}"}), file=sys.stderr)
    sys.stderr.flush()
    await server.wait_for_termination()


def nearest_rank(ordered: list[float], percent: float) -> float:
    """Nearest-rank percentile of an ascending list (a value actually observed); 0 if empty."""
    if not ordered:
        return 0.0
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


def merge_clients(results: list[dict[str, Any]], model_bytes: int) -> dict[str, Any]:
    """Several client processes' counts as one load: bytes/s over the longest window."""
    seconds = max(r["seconds"] for r in results)
    latencies = sorted(s for r in results for s in r["download_seconds"])
    failures: dict[str, int] = {}
    for result in results:
        for error, count in result["failures"].items():
            failures[error] = failures.get(error, 0) + count
    total = sum(r["bytes"] for r in results)
    downloads = sum(r["downloads"] for r in results)
    return {
        "concurrency": sum(r["concurrency"] for r in results),
        "clients": len(results),
        "seconds": round(seconds, 3),
        "bytes": total,
        "bytes_per_s": total / seconds if seconds else 0.0,
        "downloads": downloads,
        "downloads_per_s": downloads / seconds if seconds else 0.0,
        "verified": sum(r["verified"] for r in results),
        "p50_seconds": nearest_rank(latencies, 50),
        "p99_seconds": nearest_rank(latencies, 99),
        "failures": failures,
        "warmup_failures": sum(r["warmup_failures"] for r in results),
        "model_bytes": model_bytes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    client = sub.add_parser("client")
    client.add_argument("--target", required=True)
    client.add_argument("--devices", required=True, help="JSON list of [device name, token]")
    client.add_argument("--first-device", type=int, default=0)
    client.add_argument("--concurrency", type=int, required=True)
    client.add_argument("--seconds", type=float, default=10.0)
    client.add_argument("--sha256", required=True)
    client.add_argument("--mode", choices=("grpc", "url", "http"), default="grpc")
    client.add_argument("--url", help="--mode http: the URL every worker fetches")
    bare = sub.add_parser("bare-server")
    bare.add_argument("--model", required=True)
    bare.add_argument("--chunk-bytes", type=int, default=64 * 1024)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.command == "client":
        print(json.dumps(asyncio.run(run_client(args))), flush=True)
    else:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_bare_server(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
