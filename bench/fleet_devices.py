"""Lean simulated devices for ``bench/fleet_load.py``: the device protocol, nothing more.

One process plays ``--count`` devices (from ``--first``) over ``--channels`` gRPC
channels to each server, all on one asyncio loop: no onnxruntime, no state on disk, no
agent logic beyond the protocol, so that many devices cost this machine little and what
the figures show is the servers. ``fleet_load.py`` starts several such processes and
drives them through phases, one line on stdin each, each answered by one JSON line on
stdout:

``boot``
    every device enrols (``RegisterDevice`` with the fleet's token and a request id, the
    same id on each retry), asks for its manifest, reads the model (``ReadModel``; a cut
    stream is resumed from the bytes it has), checks its sha256 and reports it
    (``ReportStatus``); at most ``--in-flight`` boots at once.
``watch``
    every booted device holds ``WatchModel`` open and heartbeats every
    ``--heartbeat-seconds`` (first beats spread over one interval); answered once every
    stream has delivered the current manifest.
``count``
    how many heartbeats have succeeded so far.
``told``
    answered once every device's stream has delivered a manifest of ``--next-sha256``
    (without it: of any model but the one it booted with, such as one search has yet to
    make) (or after ``--told-timeout`` seconds): when each was told (wall clock, so that the
    driver compares it with the moment it pushed the model), and with ``--follow`` when
    each then ran it: a device told of another model than its own reads it (resumed as
    at boot), checks its sha256 and reports it with ``--report-latency-ms`` as its
    measured latency (a lean device runs no model; a staged rollout's canaries count a
    report within the profile's budget as a success).
``stop``
    streams and heartbeats end; the answer holds every call's figures.

Figures per RPC: calls that succeeded with their latencies, failed attempts by status
code, bytes received. The agent's transient codes (`agent.backoff.TRANSIENT_CODES`:
UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, CANCELLED) are retried after its
backoff, up to ``RETRIES`` attempts; a device whose boot still fails is counted failed
with its last error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from grpc import aio

from ofa_fleet.agent.backoff import TRANSIENT_CODES, Backoff
from ofa_fleet.serving.channel_options import CLIENT_OPTIONS
from ofa_fleet.serving.client import bearer
from ofa_fleet.v1 import delivery_pb2, delivery_pb2_grpc, registry_pb2, registry_pb2_grpc

T = TypeVar("T")
CALL_TIMEOUT_S = 60.0
RETRIES = 6
BACKOFF = Backoff()  # the agent's: 0.5 s doubling to 30 s, each wait jittered


class RpcFigures:
    """One RPC's outcomes in this process."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.errors: dict[str, int] = {}
        self.bytes = 0
        self.messages = 0  # a stream's messages received (WatchModel's manifests)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "errors": self.errors,
            "bytes": self.bytes,
            "messages": self.messages,
        }


class Figures:
    def __init__(self) -> None:
        self.rpcs: dict[str, RpcFigures] = {}
        self.frozen = False  # set at `stop`: calls cut short then are not counted

    def of(self, rpc: str) -> RpcFigures:
        return self.rpcs.setdefault(rpc, RpcFigures())

    async def call(self, rpc: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()` until it succeeds or fails for good, each outcome counted."""
        figures = self.of(rpc)
        for tries in range(1, RETRIES + 1):
            started = time.perf_counter()
            try:
                answer = await attempt()
            except aio.AioRpcError as error:
                code = error.code()
                if self.frozen:
                    raise
                figures.errors[code.name] = figures.errors.get(code.name, 0) + 1
                if code not in TRANSIENT_CODES or tries == RETRIES:
                    raise
                await asyncio.sleep(BACKOFF.delay(tries - 1))
                continue
            figures.seconds.append(time.perf_counter() - started)
            return answer
        raise AssertionError("unreachable")

    def to_dict(self) -> dict[str, Any]:
        return {name: f.to_dict() for name, f in self.rpcs.items()}


class Device:
    def __init__(self, index: int) -> None:
        self.index = index
        self.name = ""
        self.token = ""
        self.sha256 = ""
        self.error = ""
        self.current = ""  # what its watch stream last said
        self.current_seen = asyncio.Event()
        self.next_at = 0.0  # wall clock when told of the next model
        self.next_seen = asyncio.Event()
        self.running_at = 0.0  # wall clock when it reported the next model (--follow)
        self.follow_error = ""


class Fleet:
    """This process's devices and its channels to the two servers."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.figures = Figures()
        self.devices = [Device(args.first + i) for i in range(args.count)]
        self.registry_channels = [
            aio.insecure_channel(args.registry, options=CLIENT_OPTIONS)
            for _ in range(args.channels)
        ]
        self.delivery_channels = [
            aio.insecure_channel(args.delivery, options=CLIENT_OPTIONS)
            for _ in range(args.channels)
        ]
        self.background: list[asyncio.Task[None]] = []

    def registry(self, device: Device) -> registry_pb2_grpc.RegistryServiceStub:
        channel = self.registry_channels[device.index % len(self.registry_channels)]
        return registry_pb2_grpc.RegistryServiceStub(channel)

    def delivery(self, device: Device) -> delivery_pb2_grpc.DeliveryServiceStub:
        channel = self.delivery_channels[device.index % len(self.delivery_channels)]
        return delivery_pb2_grpc.DeliveryServiceStub(channel)

    # -- boot ------------------------------------------------------------------------

    async def boot_all(self) -> dict[str, Any]:
        started = time.perf_counter()
        slots = asyncio.Semaphore(self.args.in_flight)
        boot_seconds: list[float] = []

        async def boot(device: Device) -> None:
            async with slots:
                began = time.perf_counter()
                try:
                    await self.boot(device)
                except aio.AioRpcError as error:
                    device.error = f"{error.code().name}: {error.details()}"[:300]
                except (ValueError, ConnectionError) as error:
                    device.error = str(error)[:300]
                else:
                    boot_seconds.append(time.perf_counter() - began)

        await asyncio.gather(*(boot(d) for d in self.devices))
        failed: dict[str, int] = {}
        for device in self.devices:
            if device.error:
                failed[device.error] = failed.get(device.error, 0) + 1
        return {
            "seconds": time.perf_counter() - started,
            "booted": len(boot_seconds),
            "verified": sum(1 for d in self.devices if d.sha256 and not d.error),
            "failed": failed,
            "boot_seconds": sorted(boot_seconds),
        }

    async def boot(self, device: Device) -> None:
        registry = self.registry(device)
        request_id = str(uuid.uuid4())
        enrolled = await self.figures.call(
            "RegisterDevice",
            lambda: registry.RegisterDevice(
                registry_pb2.RegisterDeviceRequest(
                    hardware_id=f"load-{device.index:06d}", request_id=request_id
                ),
                metadata=bearer(self.args.fleet_token),
                timeout=CALL_TIMEOUT_S,
            ),
        )
        device.name, device.token = enrolled.device.name, enrolled.device_token
        delivery = self.delivery(device)
        answer = await self.figures.call(
            "GetModelManifest",
            lambda: delivery.GetModelManifest(
                delivery_pb2.GetModelManifestRequest(device=device.name),
                metadata=bearer(device.token),
                timeout=CALL_TIMEOUT_S,
            ),
        )
        manifest = answer.manifest
        data = await self.read_model(device, manifest.sha256, manifest.size_bytes)
        if hashlib.sha256(data).hexdigest() != manifest.sha256:
            raise ValueError("the model's bytes do not match its manifest's sha256")
        device.sha256 = manifest.sha256
        report = registry_pb2.ReportStatusRequest(
            name=device.name,
            report=registry_pb2.StatusReport(model_sha256=manifest.sha256),
            request_id=str(uuid.uuid4()),
        )
        await self.figures.call(
            "ReportStatus",
            lambda: registry.ReportStatus(
                report, metadata=bearer(device.token), timeout=CALL_TIMEOUT_S
            ),
        )

    async def read_model(self, device: Device, sha256: str, size: int) -> bytes:
        """The model's bytes, a cut stream resumed from what it had (as the agent does)."""
        delivery = self.delivery(device)
        received = bytearray()
        figures = self.figures.of("ReadModel")

        async def attempt() -> None:
            call = delivery.ReadModel(
                delivery_pb2.ReadModelRequest(sha256=sha256, read_offset=len(received)),
                metadata=bearer(device.token),
                timeout=CALL_TIMEOUT_S,
            )
            async for message in call:
                if message.chunk.offset != len(received):
                    raise ValueError("a chunk arrived out of order")
                received.extend(message.chunk.data)
                figures.bytes += len(message.chunk.data)

        await self.figures.call("ReadModel", attempt)
        if len(received) != size:
            raise ValueError(f"the model is {size} bytes; {len(received)} arrived")
        return bytes(received)

    # -- watch and heartbeats -----------------------------------------------------------

    async def watch_all(self) -> dict[str, Any]:
        booted = [d for d in self.devices if d.sha256 and not d.error]
        for device in booted:
            self.background.append(asyncio.create_task(self.watch(device)))
            self.background.append(asyncio.create_task(self.heartbeats(device)))
        started = time.perf_counter()
        await asyncio.gather(*(d.current_seen.wait() for d in booted))
        return {"watching": len(booted), "seconds": time.perf_counter() - started}

    async def watch(self, device: Device) -> None:
        figures = self.figures.of("WatchModel")
        attempt = 0
        while True:
            call = self.delivery(device).WatchModel(
                delivery_pb2.WatchModelRequest(device=device.name),
                metadata=bearer(device.token),
            )
            try:
                async for message in call:
                    attempt = 0
                    device.current = message.manifest.sha256
                    device.current_seen.set()
                    if self.is_next(device) and not device.next_seen.is_set():
                        device.next_at = time.time()
                        device.next_seen.set()
                        if self.args.follow and device.sha256 != device.current:
                            self.background.append(
                                asyncio.create_task(self.follow(device, message.manifest))
                            )
                    figures.bytes += message.ByteSize()
                    figures.messages += 1
            except aio.AioRpcError as error:
                if self.figures.frozen:  # cut by `close`: not the servers' failure
                    return
                name = error.code().name
                figures.errors[name] = figures.errors.get(name, 0) + 1
                await asyncio.sleep(BACKOFF.delay(attempt))  # as the agent waits
                attempt += 1

    def is_next(self, device: Device) -> bool:
        if self.args.next_sha256:
            return device.current == self.args.next_sha256
        return bool(device.sha256) and device.current != device.sha256

    async def follow(self, device: Device, manifest: delivery_pb2.ModelManifest) -> None:
        """Read, verify and report the model the device was told of (``--follow``); as the
        agent does, a download that still fails after its retries is tried again after
        the backoff's longest wait, until ``told`` stops waiting."""
        attempt = 0
        while True:
            try:
                await self.follow_once(device, manifest)
                return
            except aio.AioRpcError as error:
                if error.code() not in TRANSIENT_CODES:
                    device.follow_error = f"{error.code().name}: {error.details()}"[:300]
                    return
            except ValueError as error:
                device.follow_error = str(error)[:300]
                return
            await asyncio.sleep(BACKOFF.delay(RETRIES + attempt))
            attempt += 1

    async def follow_once(self, device: Device, manifest: delivery_pb2.ModelManifest) -> None:
        data = await self.read_model(device, manifest.sha256, manifest.size_bytes)
        if hashlib.sha256(data).hexdigest() != manifest.sha256:
            raise ValueError("the model's bytes do not match its manifest's sha256")
        report = registry_pb2.ReportStatusRequest(
            name=device.name,
            report=registry_pb2.StatusReport(
                model_sha256=manifest.sha256,
                measured_latency_ms=self.args.report_latency_ms,
            ),
            request_id=str(uuid.uuid4()),
        )
        registry = self.registry(device)
        await self.figures.call(
            "ReportStatus",
            lambda: registry.ReportStatus(
                report, metadata=bearer(device.token), timeout=CALL_TIMEOUT_S
            ),
        )
        device.sha256 = manifest.sha256
        device.running_at = time.time()

    async def heartbeats(self, device: Device) -> None:
        registry = self.registry(device)
        interval = self.args.heartbeat_seconds
        await asyncio.sleep(random.uniform(0, interval))
        while True:
            beat = time.perf_counter()
            with contextlib.suppress(aio.AioRpcError):  # counted in the figures
                await self.figures.call(
                    "Heartbeat",
                    lambda: registry.Heartbeat(
                        registry_pb2.HeartbeatRequest(name=device.name),
                        metadata=bearer(device.token),
                        timeout=CALL_TIMEOUT_S,
                    ),
                )
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - beat)))

    async def count(self) -> dict[str, Any]:
        return {"heartbeats": len(self.figures.of("Heartbeat").seconds)}

    async def told(self) -> dict[str, Any]:
        watching = [d for d in self.devices if d.current_seen.is_set()]
        deadline = time.monotonic() + self.args.told_timeout
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(d.next_seen.wait() for d in watching)),
                self.args.told_timeout,
            )
        while self.args.follow and time.monotonic() < deadline:
            if all(d.running_at or d.follow_error for d in watching if d.next_seen.is_set()):
                break
            await asyncio.sleep(0.05)
        failed: dict[str, int] = {}
        for device in watching:
            if device.follow_error:
                failed[device.follow_error] = failed.get(device.follow_error, 0) + 1
        return {
            "watching": len(watching),
            "told_at": sorted(d.next_at for d in watching if d.next_seen.is_set()),
            "running_at": sorted(d.running_at for d in watching if d.running_at),
            "follow_failed": failed,
        }

    async def close(self) -> dict[str, Any]:
        self.figures.frozen = True
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        for channel in (*self.registry_channels, *self.delivery_channels):
            await channel.close()
        return {"rpcs": self.figures.to_dict()}


async def run(args: argparse.Namespace) -> None:
    fleet = Fleet(args)
    phases = {
        "boot": fleet.boot_all,
        "watch": fleet.watch_all,
        "count": fleet.count,
        "told": fleet.told,
    }
    print(json.dumps({"ready": len(fleet.devices)}), flush=True)
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).strip()
        if line in phases:
            print(json.dumps(await phases[line]()), flush=True)
        else:  # "stop", or the driver went away
            print(json.dumps(await fleet.close()), flush=True)
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--delivery", required=True)
    parser.add_argument("--fleet-token", required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--heartbeat-seconds", type=float, default=30.0)
    parser.add_argument("--next-sha256", default="")
    parser.add_argument("--told-timeout", type=float, default=300.0)
    parser.add_argument("--follow", action="store_true")
    parser.add_argument("--report-latency-ms", type=float, default=1.0)
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
