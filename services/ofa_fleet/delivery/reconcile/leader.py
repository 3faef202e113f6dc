"""Run the reconciler on exactly one delivery replica: the one holding the leader lock.

Every replica started with ``--search`` competes; the rest stand by and poll, serving
models all the while. A leader that loses its lock (its database connection died) stops
reconciling and raises, and the process exits non-zero: another replica may already lead,
and a restarted process rejoins as a standby. That is how Kubernetes' own controllers
treat a lost lease; carrying on would let two replicas mark models current at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ofa_fleet.delivery.reconcile.reconciler import Reconciler
from ofa_fleet.errors import UnavailableError
from ofa_fleet.storage.leadership import LeaderLock

log = logging.getLogger("ofa_fleet.delivery")
RECONCILER_LOCK_KEY = 0x0FA_4EC0
POLL_SECONDS = 5.0


class LeadershipLostError(UnavailableError):
    pass


async def reconcile_as_leader(
    lock: LeaderLock, reconciler: Reconciler, poll_seconds: float = POLL_SECONDS
) -> None:
    """Stand by until the lock is ours, then reconcile until stopped or the lock is lost."""
    announced = False
    while not await asyncio.to_thread(lock.try_acquire):
        if not announced:
            log.info("standing by", extra={"reason": "another replica runs the reconciler"})
            announced = True
        await asyncio.sleep(poll_seconds)
    log.info("leading", extra={"role": "this replica runs the reconciler"})
    running = asyncio.create_task(reconciler.run())
    try:
        while True:
            done, _ = await asyncio.wait({running}, timeout=poll_seconds)
            if done:
                await running
                return
            if not await asyncio.to_thread(lock.held):
                reconciler.stop()
                await running
                raise LeadershipLostError(
                    "lost the reconciler lock (database connection lost); exiting so that "
                    "one replica at a time reconciles"
                )
    except asyncio.CancelledError:
        reconciler.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        raise
    finally:
        await asyncio.to_thread(lock.release)
