"""Searches as long-running operations: one per distinct request, shared by its callers.

A search used to live and die with the stream that asked for it, so a delivery replica
that failed over mid-search threw the work away and its successor started again. Here a
search belongs to the service: a request identical to one being searched (same supernet,
profile content and options) joins it, and a search whose last caller has gone runs on
for a grace period, long enough for a new leader to ask again and join. Then it stops,
and the work on the cluster with it (the search polls its stop flag between rounds).

Everything here runs on the server's event loop; only the search itself runs on the
thread pool, and its progress comes back through `loop.call_soon_threadsafe`. A finished
search is remembered as a `SearchState` (its result without the model), never with its
model bytes, which the result cache bounds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ofa_fleet.contract.operation_names import ID_HEX_DIGITS, PREFIX
from ofa_fleet.errors import CancelledError, NotFoundError
from ofa_fleet.search.convert import result_to_proto
from ofa_fleet.search.specializer import Event, Specialization
from ofa_fleet.v1 import search_pb2

DEFAULT_DETACHED_GRACE_SECONDS = 60.0
# Finished searches stay listed this long (at most this many), for GetOperation.
FINISHED_RETENTION_SECONDS = 15 * 60.0
MAX_FINISHED = 256

Run = Callable[[Callable[[Event], None], Callable[[], bool]], Specialization]
"""A search to run on the pool: given where to send progress and when to stop."""


@dataclass(frozen=True)
class SearchState:
    """A search as its operation reports it, running or finished."""

    name: str
    profile_name: str
    created: float  # time.time()
    ended: float | None  # None while it runs
    latest: Event | None  # the newest progress
    callers: int
    result: search_pb2.SpecializeResult | None = None  # without the model bytes
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.ended is not None


@dataclass(eq=False)
class Job:
    """One search and the streams following it."""

    name: str
    profile_name: str
    created: float  # time.time()
    work: asyncio.Future[Specialization]
    stop: threading.Event
    latest: Event | None = None
    callers: set[asyncio.Queue[Event]] = field(default_factory=set)
    _detached: asyncio.TimerHandle | None = None

    @property
    def done(self) -> bool:
        return self.work.done()

    def state(self) -> SearchState:
        """As it stands now (finished: see `Jobs._ended`)."""
        return SearchState(
            self.name, self.profile_name, self.created, None, self.latest, len(self.callers)
        )


class Jobs:
    """The searches of one search server, by operation name."""

    def __init__(
        self,
        pool: concurrent.futures.Executor,
        detached_grace_seconds: float = DEFAULT_DETACHED_GRACE_SECONDS,
        on_started: Callable[[asyncio.Future[Specialization]], None] = lambda _: None,
    ) -> None:
        self.pool = pool
        self.detached_grace_seconds = detached_grace_seconds
        self.on_started = on_started
        self._running: dict[str, Job] = {}
        self._finished: dict[str, SearchState] = {}  # oldest first

    def join(self, digest: str, profile_name: str, run: Run) -> tuple[Job, asyncio.Queue[Event]]:
        """Follow the search of the request whose hex ``digest`` is given, starting it if
        none runs; the queue gets its progress from now on (the newest event first)."""
        key = digest[:ID_HEX_DIGITS]
        job = self._running.get(key)
        if job is None:
            job = self._start(key, profile_name, run)
        queue: asyncio.Queue[Event] = asyncio.Queue()
        if job.latest is not None:
            queue.put_nowait(job.latest)
        job.callers.add(queue)
        if job._detached is not None:  # a caller came back in time
            job._detached.cancel()
            job._detached = None
        return job, queue

    def leave(self, job: Job, queue: asyncio.Queue[Event]) -> None:
        """A caller stops following; the last one's leaving starts the grace period."""
        job.callers.discard(queue)
        if job.callers or job.done:
            return
        if self.detached_grace_seconds <= 0:
            job.stop.set()
        else:
            loop = asyncio.get_running_loop()
            job._detached = loop.call_later(self.detached_grace_seconds, self._abandon, job)

    def get(self, name: str) -> SearchState:
        self._forget_old()
        key = _key_of(name)
        job = self._running.get(key)
        if job is not None:
            return job.state()
        finished = self._finished.get(key)
        if finished is None:
            raise NotFoundError(
                f"no search {name!r} here: it never ran on this server, or it ended more "
                f"than {FINISHED_RETENTION_SECONDS / 60:g} minutes ago"
            )
        return finished

    async def wait(self, name: str, seconds: float) -> SearchState:
        """The search once it ended, or as it stands after ``seconds``; waiting never
        stops it."""
        job = self._running.get(_key_of(name))
        if job is not None:
            await asyncio.wait({job.work}, timeout=seconds)
            await asyncio.sleep(0)  # its end is recorded by a callback of the same future
        return self.get(name)

    def all(self) -> list[SearchState]:
        """Running and recently finished searches, oldest first."""
        self._forget_old()
        states = [job.state() for job in self._running.values()]
        return sorted([*states, *self._finished.values()], key=_created)

    def cancel(self, name: str) -> None:
        """Stop a running search (its callers get CANCELLED); a finished one stays as it
        ended."""
        self.get(name)  # NOT_FOUND for one not here
        job = self._running.get(_key_of(name))
        if job is not None:
            job.stop.set()

    def delete(self, name: str) -> None:
        """Forget a search; one still running is stopped first."""
        self.cancel(name)
        self._finished.pop(_key_of(name), None)

    def close(self) -> None:
        for job in self._running.values():
            job.stop.set()

    def _start(self, key: str, profile_name: str, run: Run) -> Job:
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        job: Job  # assigned before any event can arrive (they come via the loop)

        def on_event(event: Event) -> None:  # on the pool: `job` is read on the loop
            loop.call_soon_threadsafe(lambda: _publish(job, event))

        work = loop.run_in_executor(self.pool, run, on_event, stop.is_set)
        job = Job(f"{PREFIX}{key}", profile_name, time.time(), work, stop)
        self._running[key] = job
        work.add_done_callback(lambda _: self._ended(key, job))
        self.on_started(work)
        return job

    def _ended(self, key: str, job: Job) -> None:
        if self._running.get(key) is job:
            del self._running[key]
        work = job.work
        error = CancelledError("the search was stopped") if work.cancelled() else work.exception()
        result = None if error is not None else result_to_proto(work.result(), job.name).result
        state = SearchState(
            job.name, job.profile_name, job.created, time.time(), job.latest, 0, result, error
        )
        self._finished.pop(key, None)
        self._finished[key] = state
        while len(self._finished) > MAX_FINISHED:
            del self._finished[next(iter(self._finished))]

    def _abandon(self, job: Job) -> None:
        job._detached = None
        if not job.callers:
            job.stop.set()

    def _forget_old(self) -> None:
        cutoff = time.time() - FINISHED_RETENTION_SECONDS
        for key in [k for k, s in self._finished.items() if (s.ended or 0) < cutoff]:
            del self._finished[key]


def _publish(job: Job, event: Event) -> None:
    job.latest = event
    for queue in job.callers:
        queue.put_nowait(event)


def _key_of(name: str) -> str:
    return name.removeprefix(PREFIX)


def _created(state: SearchState) -> float:
    return state.created
