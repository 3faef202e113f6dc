"""Ask for this device's model with what it has (`GetModelManifest`), stream its bytes to
disk (`ReadModel`), install it.

One call of `fetch` is one attempt; the boot retries it with backoff, and because every
chunk is appended to the partial file as it arrives, each retry (or the next start, after
a crash or a SIGTERM) reads from what is on disk on and receives only the rest.
Nothing downloaded is trusted: the manifest is checked against the trusted keys before the
first byte (`manifests.signed_manifest`), and `ModelDirectory.install` checks size,
sha256 and signature again over the whole file before it becomes current.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from grpc import aio

from ofa_fleet.agent.backoff import TransientError, describe, server_reason
from ofa_fleet.agent.connections import Connections
from ofa_fleet.agent.identity import Identity
from ofa_fleet.agent.install import ModelDirectory
from ofa_fleet.agent.manifests import signed_manifest
from ofa_fleet.agent.pending import clear_pending, read_pending, write_pending
from ofa_fleet.agent.state import InstalledModel
from ofa_fleet.agent.trust import TrustedKeys
from ofa_fleet.agent.url_download import fetch_url
from ofa_fleet.contract.error_details import MODEL_NOT_READY, PROFILE_INFEASIBLE
from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.errors import IntegrityError, InvalidArgumentError, RemoteCallError
from ofa_fleet.serving.client import bearer
from ofa_fleet.v1 import delivery_pb2

log = logging.getLogger("ofa_fleet.agent")
MAX_URLS = 4  # the most a manifest names
# (bytes of the model on disk, its size): called after every chunk is on disk.
ChunkHook = Callable[[int, int], None]
DEFAULT_DOWNLOAD_TIMEOUT_SECONDS = 600.0
DEFAULT_STALL_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class DownloadTimeouts:
    """Bounds of one attempt's long calls.

    `call_seconds` is the deadline of a `ReadModel` stream and of the wait for a model that
    is still being specialized, so it is generous; a transfer that outlives it is simply
    resumed by the next attempt. `stall_seconds` bounds the gap between two chunks, so that
    a stalled stream is noticed long before the deadline.
    """

    call_seconds: float = DEFAULT_DOWNLOAD_TIMEOUT_SECONDS
    stall_seconds: float = DEFAULT_STALL_TIMEOUT_SECONDS


@dataclass
class Transfer:
    """What one boot's download attempts moved, all retries together."""

    bytes_downloaded: int = 0
    resumed_from: int = 0  # offset the first resumed stream started at; 0 when none


@dataclass(frozen=True)
class Fetched:
    model: InstalledModel
    up_to_date: bool


class ModelFetcher:
    """Fetches and installs this device's model from delivery."""

    def __init__(
        self,
        connections: Connections,
        identity: Identity,
        models: ModelDirectory,
        keys: TrustedKeys,
        timeouts: DownloadTimeouts = DownloadTimeouts(),
        on_chunk: ChunkHook | None = None,
        wait_while_infeasible: bool = True,
        on_infeasible: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``wait_while_infeasible``: where no model fits the device's profile, watch for
        one (a daemon) rather than fail (a single boot). ``on_infeasible`` runs first,
        each time: the device measuring its own latency table, which may show
        that a model does fit (the profile's estimate said none did)."""
        self.wait_while_infeasible = wait_while_infeasible
        self.on_infeasible = on_infeasible
        self.connections = connections
        self.identity = identity
        self.models = models
        self.keys = keys
        self.timeouts = timeouts
        self.on_chunk = on_chunk
        self.bad_urls: set[str] = set()  # gave bytes that failed their check

    @property
    def state_dir(self) -> Path:
        return self.models.state_dir

    async def fetch(self, have: InstalledModel | None, transfer: Transfer) -> Fetched:
        """One attempt: up to date, or the model downloaded and installed.

        Transient failures (delivery down, the stream cut or stalled, no model yet) are
        raised for the caller to retry; `IntegrityError` means the model was refused and
        is not kept.
        """
        answer = await self._target(have)
        if answer.HasField("up_to_date"):
            return self._up_to_date(answer.up_to_date.sha256, have)
        if not answer.HasField("manifest"):
            raise TransientError("delivery's GetModelManifest named no model")
        manifest = signed_manifest(answer.manifest, self.keys)
        pending = read_pending(self.state_dir)
        if pending != manifest.sha256:
            if pending:
                self.models.discard(pending)  # the target changed: that partial is moot
            write_pending(self.state_dir, manifest.sha256)
        urls = [u for u in answer.manifest.download_urls[:MAX_URLS] if u not in self.bad_urls]
        resumed, used = await self._download(manifest, urls, transfer)
        try:
            model = await self._install(manifest, answer.manifest.signature, resumed or bool(used))
        except TransientError:
            self.bad_urls.update(used)  # bytes that failed their check: not from there again
            raise
        return Fetched(model, False)

    async def _target(self, have: InstalledModel | None) -> delivery_pb2.GetModelManifestResponse:
        """This device's model (or up to date); a model being made is waited for.

        Delivery answers MODEL_NOT_READY at once while the device's profile is being
        specialized. Rather than poll, the device watches (`WatchModel`) until delivery
        announces a model, then asks again; where the watch fails, the error goes to the
        caller's retry, which waits as long as delivery asked.
        """
        request = delivery_pb2.GetModelManifestRequest(
            device=self.identity.name,
            have_sha256=have.manifest.sha256 if have else "",
        )

        async def ask() -> delivery_pb2.GetModelManifestResponse:
            return await self.connections.call_delivery(
                self.connections.delivery.GetModelManifest, request, self.identity.device_token
            )

        try:
            return await ask()
        except RemoteCallError as error:  # not transient: the server's own words
            if error.reason != PROFILE_INFEASIBLE:
                raise
            # An operator must change the profile: said loudly, and waited for unless
            # this run only boots once (then the reason is its answer, at once).
            log.error(
                "no model fits this device's profile",
                extra={"call": "delivery GetModelManifest", "error": str(error)},
            )
            if self.on_infeasible is not None:
                await self.on_infeasible()
            if not self.wait_while_infeasible:
                raise
            if not await self._announced():
                raise TransientError(str(error)) from None
        except aio.AioRpcError as error:
            if server_reason(error) != MODEL_NOT_READY:
                raise
            log.warning(
                "waiting for a model",
                extra={"call": "delivery GetModelManifest", "error": describe(error)},
            )
            if not await self._announced():
                raise
        return await ask()

    async def _announced(self) -> bool:
        """Whether delivery announced a model within the wait (False: the watch failed)."""
        call = self.connections.delivery.WatchModel(
            delivery_pb2.WatchModelRequest(device=self.identity.name),
            metadata=bearer(self.identity.device_token),
            timeout=self.timeouts.call_seconds,
        )
        try:
            async for _ in call:
                return True
            return False
        except aio.AioRpcError:
            return False
        finally:
            call.cancel()

    async def _download(
        self, manifest: Manifest, urls: list[str], transfer: Transfer
    ) -> tuple[bool, list[str]]:
        """Append the model's bytes to its partial file: from the manifest's URLs first,
        then `ReadModel`, each from what is there already. Whether it continued bytes from
        before, and the URLs that gave bytes."""
        sha256, total = manifest.sha256, manifest.size_bytes
        size = self.models.partial_size(sha256)
        if size > total:  # garbage past the end (see downloads.py): start again
            self.models.discard(sha256)
            size = 0
        start, resumed = size, size > 0
        used: list[str] = []
        for url in urls:
            if size >= total:
                break
            before = transfer.bytes_downloaded
            size = await self._from_url(url, sha256, size, total, transfer)
            if transfer.bytes_downloaded > before:
                used.append(url)
        if size < total:
            call = self.connections.delivery.ReadModel(
                delivery_pb2.ReadModelRequest(sha256=sha256, read_offset=size),
                metadata=bearer(self.identity.device_token),
                timeout=self.timeouts.call_seconds,
            )
            try:
                await self._receive(aiter(call), sha256, size, total, transfer)
            finally:
                call.cancel()
        if resumed and transfer.resumed_from == 0:
            transfer.resumed_from = start
        return resumed, used

    async def _from_url(
        self, url: str, sha256: str, size: int, total: int, transfer: Transfer
    ) -> int:
        """What `url` adds to the partial (see `url_download`); any failure is logged and
        leaves the rest to the next URL or to delivery."""

        def append(offset: int, data: bytes) -> int:
            if offset == 0 and self.models.partial_size(sha256) > 0:
                self.models.discard(sha256)  # the server sent the whole file again
            grown = self.models.append(sha256, offset, data)
            transfer.bytes_downloaded += len(data)
            if self.on_chunk is not None:
                self.on_chunk(grown, total)
            return grown

        try:
            return await asyncio.to_thread(
                fetch_url, url, size, total, append, self.timeouts.stall_seconds
            )
        except (OSError, TransientError, InvalidArgumentError, HTTPException, ValueError) as exc:
            log.warning("model URL failed", extra={"url": url[:200], "error": str(exc)[:300]})
            return self.models.partial_size(sha256)

    async def _receive(
        self,
        messages: AsyncIterator[delivery_pb2.ReadModelResponse],
        sha256: str,
        size: int,
        total: int,
        transfer: Transfer,
    ) -> None:
        while size < total:
            message = await self._read(messages, self.timeouts.stall_seconds)
            if message is None:
                raise TransientError(
                    f"delivery ended the stream of model {sha256} at {size} of {total} bytes"
                )
            chunk = message.chunk
            try:
                size = self.models.append(sha256, chunk.offset, chunk.data)
            except InvalidArgumentError as exc:
                self.models.discard(sha256)
                raise TransientError(
                    f"delivery's stream skipped or repeated bytes: {exc}"
                ) from None
            transfer.bytes_downloaded += len(chunk.data)
            if self.on_chunk is not None:
                self.on_chunk(size, total)

    async def _install(self, manifest: Manifest, signature: bytes, resumed: bool) -> InstalledModel:
        """Verify and install the download.

        A resumed download that fails its check may owe that to bytes from before (a power
        cut leaves garbage at a partial's end, see `downloads.py`), and one with bytes from
        a model URL to that cache, not to delivery: its partial is gone by now, so it is
        retried once more from zero (without those URLs). One received whole from delivery
        in this very call that fails is refused.
        """
        try:
            return await asyncio.to_thread(self.models.install, manifest, signature, self.keys)
        except IntegrityError as exc:
            if not resumed:
                raise
            raise TransientError(f"{exc}; downloading it again from the start") from None
        finally:
            # Installed, or refused and its partial discarded: nothing is left to resume.
            if self.models.partial_size(manifest.sha256) == 0:
                clear_pending(self.state_dir)

    async def _read(
        self,
        messages: AsyncIterator[delivery_pb2.ReadModelResponse],
        stall_seconds: float | None,
    ) -> delivery_pb2.ReadModelResponse | None:
        """The next message, None at the end of the stream; errors made retryable or readable."""
        try:
            return await asyncio.wait_for(anext(messages), stall_seconds)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise TransientError(f"delivery sent nothing for {stall_seconds:g} s") from None
        except aio.AioRpcError as error:
            raise self.connections.delivery_error(error) from None

    def _up_to_date(self, sha256: str, have: InstalledModel | None) -> Fetched:
        if have is None or sha256 != have.manifest.sha256:
            raise IntegrityError(
                f"delivery says this device is up to date with model {sha256 or '(none)'}, but "
                f"it runs {have.manifest.sha256 if have else 'none'}"
            )
        return Fetched(have, True)
