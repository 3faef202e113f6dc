"""The change feed reads at most once per MIN_READ_SECONDS, however often it is woken,
and still delivers every change: a fleet enrolling commits every few milliseconds."""

from __future__ import annotations

import asyncio
import time

from ofa_fleet.contract.rollout import RolloutPolicy
from ofa_fleet.registry.change_feed import MIN_READ_SECONDS, ChangeFeed
from ofa_fleet.registry.records import ChangeKind
from ofa_fleet.registry.store import RegistryStore
from tests.registry.conftest import example_profile

COMMITS = 40


def test_a_burst_of_commits_is_read_in_a_few_reads_and_every_change_arrives(
    store: RegistryStore,
) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    reads = 0
    last_cursor = store.last_cursor

    def counted() -> int:
        nonlocal reads
        reads += 1
        return last_cursor()

    store.last_cursor = counted  # type: ignore[method-assign]
    feed = ChangeFeed(store, poll_seconds=5.0)

    async def scenario() -> tuple[list[str], float]:
        seen: list[str] = []
        started = time.monotonic()

        async def follow() -> None:
            async for change in feed.watch(0, frozenset({ChangeKind.DEVICE}), from_head=True):
                seen.append(change.entity_id)
                if len(seen) == COMMITS:
                    return

        watcher = asyncio.create_task(follow())
        await asyncio.sleep(0.1)
        for i in range(COMMITS):  # one commit and one wake-up every 5 ms, for 0.2 s
            store.register_device("pis", f"device-{i}")
            feed.notify()
            await asyncio.sleep(0.005)
        await asyncio.wait_for(watcher, 10)
        return seen, time.monotonic() - started

    seen, seconds = asyncio.run(scenario())
    assert len(set(seen)) == COMMITS
    # A read per MIN_READ_SECONDS at most while the burst lasted (0.3 s on a quiet
    # machine, longer where commits are slow) and the watch's start, not one per wake-up.
    allowed = seconds / MIN_READ_SECONDS + 3
    assert reads <= allowed, (reads, seconds)
