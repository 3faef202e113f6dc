"""Retrying what a device cannot help: a service that is down, slow or not ready yet.

A device keeps trying for as long as it runs, so the waits grow exponentially up to a cap
(0.5 s, 1 s, 2 s, ... 30 s) and each wait is jittered. Jitter matters for fleets: after a
registry restart a thousand devices would otherwise retry in lock step and knock it over
again. Each wait is drawn from [half, all] of its step ("equal jitter") rather than from
[0, all] ("full jitter"): full jitter spreads load slightly better, but it sometimes
retries at once, which turns a dead service into a busy loop in the device's log.

Only UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED (and `TransientError`, for a stream that
ends or stalls early) are retried. A device never cancels a call of its own that it then
looks at (its own cancellation is asyncio's, not a status), so CANCELLED comes from the
server: one that is stopping, or one so busy that gRPC gave up on the call while it
waited to be taken up (after 30 s). Anything else (a refused token, an invalid request,
a signature that does not verify) will not get better by asking again and is raised.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
from grpc import aio

from ofa_fleet.contract.error_details import decode as decode_details
from ofa_fleet.errors import InvalidArgumentError, OfaFleetError

log = logging.getLogger("ofa_fleet.agent")
T = TypeVar("T")
TRANSIENT_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)


class TransientError(OfaFleetError):
    """Something that a later attempt may not meet: a stream cut short, a stalled server."""


@dataclass(frozen=True)
class Backoff:
    """Exponential waits with equal jitter: step n waits U(s/2, s), s = min(cap, initial*2^n)."""

    initial_seconds: float = 0.5
    cap_seconds: float = 30.0
    multiplier: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial_seconds <= self.cap_seconds or self.multiplier < 1:
            raise InvalidArgumentError(
                "backoff needs 0 < initial <= cap and a multiplier of at least 1, got "
                f"initial {self.initial_seconds}, cap {self.cap_seconds}, "
                f"multiplier {self.multiplier}"
            )

    def step(self, attempt: int) -> float:
        """The un-jittered wait before retry number `attempt` (0 for the first retry)."""
        exponent = min(attempt, 64)  # 2**64 * anything is past every cap
        return min(self.cap_seconds, self.initial_seconds * self.multiplier**exponent)

    def delay(self, attempt: int) -> float:
        """The jittered wait before retry number `attempt`."""
        step = self.step(attempt)
        return self.rng.uniform(step / 2, step)


def is_transient(error: BaseException) -> bool:
    """Whether asking again later may succeed."""
    if isinstance(error, TransientError):
        return True
    return isinstance(error, aio.AioRpcError) and error.code() in TRANSIENT_CODES


def server_delay(error: BaseException) -> float | None:
    """How long the server asked its clients to wait (google.rpc RetryInfo), if it did."""
    if not isinstance(error, aio.AioRpcError):
        return None
    details = decode_details(error.trailing_metadata())
    return details.retry_after_seconds if details is not None else None


def server_reason(error: BaseException) -> str:
    """The machine-readable reason the server gave (google.rpc ErrorInfo); "" if none."""
    if not isinstance(error, aio.AioRpcError):
        return ""
    details = decode_details(error.trailing_metadata())
    return details.reason if details is not None else ""


def pause(error: BaseException, backoff: Backoff, attempt: int) -> float:
    """The wait before retry number `attempt`: the server's own delay when it named one
    (it knows its load; it can slow or shed a fleet), plus up to a quarter more so that a
    fleet told the same delay does not come back at once; else the jittered backoff."""
    asked = server_delay(error)
    if asked is not None:
        return backoff.rng.uniform(asked, asked * 1.25)
    return backoff.delay(attempt)


def describe(error: BaseException) -> str:
    """One line for a log: the status and the server's words, or the error's message."""
    if isinstance(error, aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return str(error)


async def retry(operation: Callable[[], Awaitable[T]], what: str, backoff: Backoff) -> T:
    """`operation()` until it succeeds, waiting out transient failures; others are raised.

    Never gives up on a transient failure: a device has nothing better to do than wait for
    its services. The caller bounds the whole by cancelling the task (SIGTERM does).
    """
    attempt = 0
    while True:
        try:
            return await operation()
        except Exception as error:
            if not is_transient(error):
                raise
            wait = pause(error, backoff, attempt)
            log.warning(
                "retrying",
                extra={
                    "call": what,
                    "error": describe(error),
                    "attempt": attempt + 1,
                    "retry_in_s": round(wait, 3),
                },
            )
            attempt += 1
            await asyncio.sleep(wait)
