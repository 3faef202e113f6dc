"""A running device hears of its new model: follow `WatchModel`, boot again on a change.

Delivery's `WatchModel` stream names the model this device should run now, and again each
time that changes. Whenever it names another model than the one running, the agent runs
a whole `Boot` again (download, verify, install, smoke test, report), so a new model
reaches a running device without a restart. The announcement is only a hint: it is not
trusted for anything but "ask again", and `GetModelManifest` (whose manifest is checked
against the trusted keys before a byte is kept) says what the model is.

Two tasks share the work. The watcher reads the stream and keeps only the newest
announcement, so a model announced while a boot runs is not lost, and two announced
during one boot cost one more boot, not two. The updater boots whenever the newest
announcement differs from the running model. A model whose boot went wrong (refused,
rolled back, or failed outright) is not tried again until delivery names another one:
every reconnect announces the target again, and a refused model would otherwise be
downloaded and refused after each one.

The stream is reconnected with the agent's backoff whenever it fails or ends (delivery
restarting ends every stream), and the waits start small again once a stream delivers.
Refused credentials end the agent, as they do its heartbeat: the device was deleted and
asking again will not help. A delivery that does not know `WatchModel` is not followed:
such a device updates at its next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from grpc import aio

from ofa_fleet.agent.backoff import Backoff, describe
from ofa_fleet.agent.boot import BootReport
from ofa_fleet.agent.connections import Connections
from ofa_fleet.agent.identity import Identity
from ofa_fleet.errors import OfaFleetError
from ofa_fleet.serving.client import bearer, remote_error
from ofa_fleet.v1 import delivery_pb2

log = logging.getLogger("ofa_fleet.agent")
# A watch is a long call, but every call has a deadline: at this one it is simply
# reconnected, which also moves a device off a replica that was drained meanwhile.
WATCH_DEADLINE_SECONDS = 1800.0
FATAL_CODES = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})

BootAgain = Callable[[], Awaitable[BootReport]]


class ModelUpdates:
    """Follows this device's `WatchModel` stream and boots again when its model changes."""

    def __init__(
        self,
        connections: Connections,
        identity: Identity,
        backoff: Backoff,
        running: str,
        boot_again: BootAgain,
    ) -> None:
        self.connections = connections
        self.identity = identity
        self.backoff = backoff
        self.running = running  # sha256 of the model the device runs now
        self.boot_again = boot_again
        self.announced = ""
        self.connected = 0  # streams opened, reconnections included
        self._failed = ""  # the last model whose boot went wrong
        self._wake = asyncio.Event()

    async def follow(self) -> None:
        """Watch and update until cancelled; returns only if delivery has no `WatchModel`."""
        tasks = [asyncio.create_task(self._watch()), asyncio.create_task(self._update())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # an error of either ends the watch with it
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch(self) -> None:
        attempt = 0
        while True:
            try:
                async for sha256 in self._stream():
                    attempt = 0
                    self.announced = sha256
                    self._wake.set()
                problem = "delivery ended the stream"
            except aio.AioRpcError as error:
                if error.code() in FATAL_CODES:
                    raise remote_error(
                        "delivery", self.connections.endpoints.delivery, error
                    ) from None
                if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                    log.warning(
                        "not following model updates",
                        extra={"reason": "delivery does not serve WatchModel; restart to update"},
                    )
                    return
                problem = describe(error)
            wait = self.backoff.delay(attempt)
            log.warning(
                "retrying",
                extra={
                    "call": "delivery WatchModel",
                    "error": problem,
                    "attempt": attempt + 1,
                    "retry_in_s": round(wait, 3),
                },
            )
            attempt += 1
            await asyncio.sleep(wait)

    async def _stream(self) -> AsyncIterator[str]:
        call = self.connections.delivery.WatchModel(
            delivery_pb2.WatchModelRequest(device=self.identity.name),
            metadata=bearer(self.identity.device_token),
            timeout=WATCH_DEADLINE_SECONDS,
        )
        self.connected += 1
        try:
            async for message in call:
                yield message.manifest.sha256
        finally:
            call.cancel()

    async def _update(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            target = self.announced
            if target in (self.running, self._failed):
                continue
            log.info("new model announced", extra={"model_sha256": target})
            try:
                report = await self.boot_again()
            except OfaFleetError as exc:
                log.error("update failed", extra={"model_sha256": target, "error": str(exc)})
                self._failed = target
                continue
            self.running = report.model_sha256
            self._failed = target if report.problem is not None else ""
            if report.problem is not None:
                log.error("running an older model", extra={"error": str(report.problem)})
