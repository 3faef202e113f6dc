"""Following a slice of the registry's change feed from a serving replica, for good.

Serving replicas (delivery) cache what the registry says (device tokens, fleet records)
because a booting fleet asks thousands of times a minute. Each cache learns that an entry
went stale from the feed: this loop watches the changes of the given kinds and operations
from the newest one on, hands each to `handle`, reconnects after a fault, and resumes
after the last change it saw. When the registry no longer holds that far back
(CURSOR_EXPIRED) some changes were missed, so `missed` drops everything they might
have touched and the watch starts again from the head.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import grpc
from grpc import aio

from ofa_fleet.contract.error_details import CURSOR_EXPIRED
from ofa_fleet.contract.error_details import decode as decode_details
from ofa_fleet.serving.client import bearer
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc

log = logging.getLogger("ofa_fleet.delivery")
RETRY_SECONDS = 1.0
ROUTINE_AFTER_SECONDS = 60.0  # a stream closed after this long is logged at info


async def follow_changes(
    registry: registry_pb2_grpc.RegistryServiceStub,
    token: str,
    kinds: Sequence[registry_pb2.ChangeKind],
    operations: Sequence[registry_pb2.ChangeOperation],
    handle: Callable[[registry_pb2.WatchChangesResponse], None],
    missed: Callable[[], None],
    what: str,
) -> None:
    """Hand every matching change to `handle` until cancelled (the server stops);
    `what` names the follower in its log lines."""
    cursor = 0
    while True:
        request = registry_pb2.WatchChangesRequest(
            kinds=kinds, operations=operations, after_cursor=cursor, from_head=cursor == 0
        )
        opened = time.monotonic()
        try:
            async for change in registry.WatchChanges(request, metadata=bearer(token)):
                handle(change)
                cursor = change.cursor
        except aio.AioRpcError as error:
            details = decode_details(error.trailing_metadata())
            if details is not None and details.reason == CURSOR_EXPIRED:
                missed()
                cursor = 0
            # A stream that ran a while and was closed (the registry's connection age, a
            # restart) is routine: resumed from the cursor. One that fails at once is not.
            routine = (
                error.code() is grpc.StatusCode.UNAVAILABLE
                and time.monotonic() - opened >= ROUTINE_AFTER_SECONDS
            )
            log.log(
                logging.INFO if routine else logging.WARNING,
                f"{what} interrupted",
                extra={"code": error.code().name, "error": error.details()},
            )
        await asyncio.sleep(RETRY_SECONDS)
