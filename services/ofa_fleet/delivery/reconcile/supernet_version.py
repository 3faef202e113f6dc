"""Which supernet search specializes from now, so models made from an older one go stale.

A new supernet reaches the fleet by restarting search with the new checkpoint; nothing
tells delivery, so the reconciler asks (`GetSupernet`) every `poll_seconds`. When the
answer changes, every profile is looked at again, and each whose current model was made
from another version is specialized anew. While search cannot be reached the last known
version stands: an unreachable search is no reason to call every model stale.

Each answer also carries the supernet's own ledger (what training it cost); it is kept in
delivery's database (`SupernetLedgers`) whenever the version or the ledger changes, so
the carbon report outlives search being down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from grpc import aio

from ofa_fleet.delivery.store.supernet_ledgers import SupernetLedgers
from ofa_fleet.serving.client import bearer
from ofa_fleet.v1 import search_pb2, search_pb2_grpc

log = logging.getLogger("ofa_fleet.delivery")
POLL_SECONDS = 30.0
TIMEOUT_SECONDS = 10.0


class SupernetVersion:
    def __init__(
        self,
        search: search_pb2_grpc.SearchServiceStub,
        token: str,
        poll_seconds: float = POLL_SECONDS,
        ledgers: SupernetLedgers | None = None,
        ledger_saved: Callable[[], None] = lambda: None,  # called from a worker thread
    ) -> None:
        self.search = search
        self.token = token
        self.poll_seconds = poll_seconds
        self.known = ""  # empty until search has answered once
        # Search's last answer: the space devices measure their latency tables for.
        self.answer: search_pb2.GetSupernetResponse | None = None
        self.ledgers = ledgers
        self.ledger_saved = ledger_saved  # e.g. the carbon counters read the totals again
        self._saved: tuple[str, bytes] | None = None  # what was last written, to skip repeats

    async def refresh(self) -> str:
        """Ask search now; the version it names, or the last known one if it is down."""
        try:
            answer = await self.search.GetSupernet(
                search_pb2.GetSupernetRequest(),
                metadata=bearer(self.token),
                timeout=TIMEOUT_SECONDS,
            )
        except aio.AioRpcError as error:
            log.warning(
                "search did not say its supernet version",
                extra={"code": error.code().name, "error": error.details()},
            )
            return self.known
        self.known = answer.version
        self.answer = answer
        await self._keep_ledger(answer)
        return self.known

    async def _keep_ledger(self, answer: search_pb2.GetSupernetResponse) -> None:
        if self.ledgers is None or not answer.version:
            return
        ledger = answer.ledger if answer.HasField("ledger") else None
        seen = (
            answer.version,
            b"" if ledger is None else ledger.SerializeToString(deterministic=True),
        )
        if seen == self._saved:
            return
        try:
            await asyncio.to_thread(self.ledgers.save, answer.version, ledger)
        except Exception:  # kept on the next poll; a database blink must not stop polling
            log.exception("could not store the supernet's ledger")
            return
        self._saved = seen
        await asyncio.to_thread(self.ledger_saved)

    def is_stale(self, supernet_version: str) -> bool:
        """Whether a model made from `supernet_version` should be made again."""
        return bool(self.known) and supernet_version != self.known

    async def follow(self, changed: Callable[[str], Awaitable[None]]) -> None:
        """Poll forever; `changed(version)` after every change (not on the first answer)."""
        previous = await self.refresh()
        while True:
            await asyncio.sleep(self.poll_seconds)
            version = await self.refresh()
            if version and version != previous:
                log.info("new supernet", extra={"version": version, "previous": previous})
                previous = version
                await changed(version)
