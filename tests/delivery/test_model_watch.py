"""TargetWatch: one lookup per watched fleet per poll, however many devices watch it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ofa_fleet.delivery.fleets.targets import FleetTarget
from ofa_fleet.delivery.serve.model_watch import TargetWatch
from ofa_fleet.delivery.store.model_store import ModelRecord
from ofa_fleet.errors import UnavailableError
from tests.delivery.conftest import manifest_for, model_bytes

POLL = 0.05


def record(seed: int) -> ModelRecord:
    return ModelRecord(manifest_for(model_bytes(seed)), b"manifest", b"signature", created_us=1)


class ScriptedTargets:
    """The one `TargetModels` call a watch makes: answers what the test sets, counted."""

    def __init__(self, target: FleetTarget) -> None:
        self.target = target
        self.failure: Exception | None = None
        self.lookups = 0

    async def for_fleet(self, fleet: str) -> FleetTarget:
        self.lookups += 1
        if self.failure is not None:
            raise self.failure
        return self.target


async def told(stream: AsyncIterator[ModelRecord], into: list[str]) -> None:
    async for model in stream:
        into.append(model.sha256)


async def until(condition: Any, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_many_watchers_share_one_lookup_per_poll_and_all_hear_a_change() -> None:
    async def scenario() -> None:
        first, second = record(1), record(2)
        targets = ScriptedTargets(FleetTarget(first))
        watch = TargetWatch(targets, poll_seconds=POLL)  # type: ignore[arg-type]
        heard: list[list[str]] = [[] for _ in range(500)]
        tasks = [
            asyncio.create_task(told(watch.follow("f", f"d{i}"), into))
            for i, into in enumerate(heard)
        ]
        await until(lambda: all(heard))
        polls_before = targets.lookups
        await asyncio.sleep(POLL * 10)
        # About one lookup per poll for the whole fleet, not one per watcher per poll.
        assert targets.lookups - polls_before <= 12
        targets.target = FleetTarget(second)
        await until(lambda: all(len(h) == 2 for h in heard))
        assert all(h == [first.sha256, second.sha256] for h in heard)
        watch.close()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert watch.fleets_watched == 0

    asyncio.run(scenario())


def test_notify_looks_again_at_once_and_canaries_get_their_own_model() -> None:
    async def scenario() -> None:
        old, new = record(1), record(2)
        targets = ScriptedTargets(FleetTarget(old))
        watch = TargetWatch(targets, poll_seconds=3600)  # type: ignore[arg-type]
        canary: list[str] = []
        other: list[str] = []
        tasks = [
            asyncio.create_task(told(watch.follow("f", "canary"), canary)),
            asyncio.create_task(told(watch.follow("f", "other"), other)),
        ]
        await until(lambda: canary and other)
        targets.target = FleetTarget(old, canary_model=new, canaries=frozenset({"canary"}))
        watch.notify()
        await until(lambda: len(canary) == 2)
        assert canary == [old.sha256, new.sha256] and other == [old.sha256]
        watch.close()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)

    asyncio.run(scenario())


def test_a_failed_lookup_keeps_the_streams_and_a_first_lookup_failure_fails_the_call() -> None:
    async def scenario() -> None:
        first, second = record(1), record(2)
        targets = ScriptedTargets(FleetTarget(first))
        watch = TargetWatch(targets, poll_seconds=POLL)  # type: ignore[arg-type]
        heard: list[str] = []
        task = asyncio.create_task(told(watch.follow("f", "d"), heard))
        await until(lambda: heard)
        targets.failure = UnavailableError("the registry is away")
        lookups = targets.lookups
        await until(lambda: targets.lookups >= lookups + 3)
        assert not task.done()  # still watching on the target it had
        targets.failure = None
        targets.target = FleetTarget(second)
        await until(lambda: len(heard) == 2)
        watch.close()
        await asyncio.wait_for(task, 5)

        fresh = TargetWatch(ScriptedTargets(FleetTarget(first)), poll_seconds=POLL)  # type: ignore[arg-type]
        fresh.targets.failure = UnavailableError("the registry is away")  # type: ignore[attr-defined]
        with pytest.raises(UnavailableError):
            await told(fresh.follow("g", "d"), [])
        assert fresh.fleets_watched == 0

    asyncio.run(scenario())
