"""`SearchService` over gRPC: one specialization per distinct request, streamed as it
happens to every call that asks for it.

The search itself is blocking work (Ray calls, NumPy), so it runs on a bounded thread
pool while the event loop relays its progress. It belongs to the service, not to the call
(see `jobs`): identical requests share it, and when its last caller goes it runs on for
the detached grace period, then the stop flag the search polls between rounds is set,
which cancels the Ray tasks still running for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from grpc import aio

from ofa_fleet.errors import (
    CancelledError,
    FailedPreconditionError,
    InvalidArgumentError,
    OfaFleetError,
)
from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.hardware.profile_proto import profile_from_proto
from ofa_fleet.search import convert
from ofa_fleet.search.jobs import DEFAULT_DETACHED_GRACE_SECONDS, Jobs
from ofa_fleet.search.metrics import SearchMetrics
from ofa_fleet.search.specializer import Event, Specialization, Specializer
from ofa_fleet.v1 import search_pb2, search_pb2_grpc

log = logging.getLogger("ofa_fleet.search")

ProfileLookup = Callable[[str], Awaitable[HardwareProfile]]
"""Fetches a profile by name from the registry."""

DEFAULT_CONCURRENCY = 8


class SearchServicer(search_pb2_grpc.SearchServiceServicer):
    def __init__(
        self,
        specializer: Specializer,
        lookup: ProfileLookup | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        detached_grace_seconds: float = DEFAULT_DETACHED_GRACE_SECONDS,
    ) -> None:
        self.specializer = specializer
        self.lookup = lookup
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="specialize"
        )
        self.jobs = Jobs(self.pool, detached_grace_seconds, self._started)
        self.stopping = threading.Event()
        self.active = 0  # specializations running now (read by tests and the metrics)
        self.metrics: SearchMetrics | None = None
        # The same for every call while this server runs: built once.
        self.supernet = search_pb2.GetSupernetResponse(
            version=specializer.supernet_version,
            space_fingerprint=specializer.space.fingerprint,
            space_json=specializer.space.to_json(),
            in_channels=specializer.in_channels,
            num_classes=specializer.num_classes,
        )
        if specializer.supernet_ledger is not None:
            self.supernet.ledger.CopyFrom(specializer.supernet_ledger.to_proto())

    async def Specialize(  # noqa: N802
        self, request: search_pb2.SpecializeRequest, context: aio.ServicerContext
    ) -> AsyncIterator[search_pb2.SpecializeResponse]:
        profile = await self._profile(request)
        options = convert.options_from_proto(request.options)

        def run(on_event: Callable[[Event], None], stop: Callable[[], bool]) -> Specialization:
            def should_stop() -> bool:
                return stop() or self.stopping.is_set()

            return self.specializer.specialize(profile, options, on_event, should_stop)

        digest = self.specializer.request_key(profile, options)
        job, events = self.jobs.join(digest, profile.name, run)
        try:
            while not job.done or not events.empty():
                getter: asyncio.Future[Any] = asyncio.ensure_future(events.get())
                waiting: set[asyncio.Future[Any]] = {getter, job.work}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield convert.progress_to_proto(getter.result(), job.name)
                else:
                    getter.cancel()
            result: Specialization = job.work.result()
            yield convert.result_to_proto(result, job.name)
            for chunk in convert.model_chunks(result.onnx_bytes):
                yield chunk
        finally:
            self.jobs.leave(job, events)

    async def GetSupernet(  # noqa: N802
        self, request: search_pb2.GetSupernetRequest, context: aio.ServicerContext
    ) -> search_pb2.GetSupernetResponse:
        return self.supernet

    def _started(self, work: asyncio.Future[Specialization]) -> None:
        self.active += 1
        work.add_done_callback(self._finished)

    def _finished(self, work: asyncio.Future[Specialization]) -> None:
        self.active -= 1
        # A call cancelled mid-search leaves the outcome (CancelledError) unread: read it.
        error = None if work.cancelled() else work.exception()
        if error is not None and not isinstance(error, OfaFleetError):
            # A bug; a search no caller follows any more would otherwise fail unseen.
            log.error("search failed", exc_info=error)
        if self.metrics is None:
            return
        if work.cancelled() or isinstance(error, CancelledError):
            self.metrics.ended_without_result(cancelled=True)
        elif error is not None:
            self.metrics.ended_without_result(cancelled=False)
        else:
            self.metrics.finished(work.result())

    async def _profile(self, request: search_pb2.SpecializeRequest) -> HardwareProfile:
        target = request.WhichOneof("target")
        if target == "profile":
            return profile_from_proto(request.profile, "profile")
        if target == "profile_name":
            if self.lookup is None:
                raise FailedPreconditionError(
                    "this search service has no registry to look profile_name up in "
                    "(start it with --registry), so send the profile inline"
                )
            return await self.lookup(request.profile_name)
        raise InvalidArgumentError("give the target: profile (inline) or profile_name")

    def close(self) -> None:
        self.stopping.set()
        self.jobs.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
