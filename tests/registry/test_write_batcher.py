"""Group commit: many writes, one transaction, each caller answered with its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from ofa_fleet.contract import tokens
from ofa_fleet.contract.rollout import RolloutPolicy
from ofa_fleet.errors import InvalidArgumentError, NotFoundError
from ofa_fleet.registry.records import Enrolment
from ofa_fleet.registry.store import RegistryStore
from ofa_fleet.registry.write_batcher import WriteBatcher
from tests.registry.conftest import example_profile


def test_concurrent_writes_share_commits_and_fail_alone(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    batcher = WriteBatcher(store.database, max_batch=16)
    commits = 0
    original = batcher._commit

    def counting(writes):  # type: ignore[no-untyped-def]
        nonlocal commits
        commits += 1
        return original(writes)

    batcher._commit = counting  # type: ignore[method-assign]

    async def burst() -> list[object]:
        calls = [
            batcher.submit_shared(
                RegistryStore.register_devices_in,
                _enrolment("nope" if i == 7 else "pis", f"{i}"),
            )
            for i in range(40)
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(burst())
    assert isinstance(outcomes[7], NotFoundError)
    registered = [o for i, o in enumerate(outcomes) if i != 7]
    assert all(isinstance(o, tuple) for o in registered)
    assert [o[0].hardware_id for o in registered] == [str(i) for i in range(40) if i != 7]  # type: ignore[index]
    stored = {d.id for d in store.list_devices(page_size=1000).items}
    assert stored == {o[0].id for o in registered}  # type: ignore[index]
    assert 3 <= commits < 40  # batched (16 a commit at most), not one commit per write
    assert [c.cursor for c in store.changes_after(0)] == list(range(1, 42))


def test_writes_arriving_one_by_one_within_the_linger_share_a_commit(
    store: RegistryStore,
) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    batcher = WriteBatcher(store.database, linger_seconds=0.5)
    sizes: list[int] = []
    original = batcher._commit

    def counting(writes):  # type: ignore[no-untyped-def]
        sizes.append(len(writes))
        return original(writes)

    batcher._commit = counting  # type: ignore[method-assign]

    async def trickle() -> list[object]:
        calls = []
        for i in range(5):  # as heartbeats arrive: spread out, not in one burst
            calls.append(
                asyncio.ensure_future(
                    batcher.submit_shared(
                        RegistryStore.register_devices_in, _enrolment("pis", f"{i}")
                    )
                )
            )
            await asyncio.sleep(0.01)
        return await asyncio.gather(*calls)

    outcomes = asyncio.run(trickle())
    assert len(outcomes) == 5 and sizes == [5]


def test_a_failed_commit_fails_every_write_in_it(store: RegistryStore) -> None:
    batcher = WriteBatcher(store.database)

    def broken(writes):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    batcher._commit = broken  # type: ignore[method-assign]

    async def two() -> list[object]:
        return await asyncio.gather(
            batcher.submit_shared(_echo, 1), batcher.submit_shared(_echo, 2), return_exceptions=True
        )

    outcomes = asyncio.run(two())
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    with pytest.raises(NotFoundError):
        store.heartbeat("d-" + "0" * 20)


def test_a_kind_of_write_that_fails_whole_is_rolled_back_alone(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    batcher = WriteBatcher(store.database)

    async def both() -> list[object]:
        return await asyncio.gather(
            batcher.submit_shared(_enrol_then_refuse, _enrolment("pis", "rolled-back")),
            batcher.submit_shared(RegistryStore.register_devices_in, _enrolment("pis", "kept")),
            return_exceptions=True,
        )

    refused, kept = asyncio.run(both())
    assert isinstance(refused, InvalidArgumentError)
    assert isinstance(kept, tuple)
    stored = [d.hardware_id for d in store.list_devices(page_size=10).items]
    assert stored == ["kept"]


def test_the_only_kind_in_a_batch_that_fails_whole_leaves_nothing_written(
    store: RegistryStore,
) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    batcher = WriteBatcher(store.database)

    async def alone() -> list[object]:
        return await asyncio.gather(
            *(batcher.submit_shared(_enrol_then_refuse, _enrolment("pis", f"{i}")) for i in "ab"),
            return_exceptions=True,
        )

    assert all(isinstance(o, InvalidArgumentError) for o in asyncio.run(alone()))
    assert store.list_devices(page_size=10).items == ()
    assert store.changes_after(0)[-1].kind.name == "FLEET"  # no device change either


def _enrol_then_refuse(c, enrolments):  # type: ignore[no-untyped-def]
    RegistryStore.register_devices_in(c, enrolments)  # written, then rolled back
    raise InvalidArgumentError("refused after writing")


def _echo(c, items):  # type: ignore[no-untyped-def]
    return {item: item for item in items}


def _enrolment(fleet: str, hardware_id: str, request_id: str = "") -> Enrolment:
    return Enrolment(fleet, hardware_id, request_id, *tokens.issue(tokens.DEVICE_PREFIX))


def test_heartbeats_in_one_batch_share_one_statement_and_fail_alone(
    store: RegistryStore,
) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    devices = [store.register_device("pis", f"hw-{i}")[0].id for i in range(30)]
    batcher = WriteBatcher(store.database, max_batch=64)
    calls: list[int] = []

    def counting(c, device_ids):  # type: ignore[no-untyped-def]
        calls.append(len(device_ids))
        return RegistryStore.heartbeats_in(c, device_ids)

    missing, malformed = "d-" + "0" * 20, "not a device id"
    asked = [*devices, devices[0], missing, malformed]  # devices[0] beats twice

    async def burst() -> list[object]:
        beats = [batcher.submit_shared(counting, device_id) for device_id in asked]
        return await asyncio.gather(*beats, return_exceptions=True)

    outcomes = asyncio.run(burst())
    assert calls == [len(asked) - 1]  # one call for the whole burst, each id once
    times = outcomes[: len(devices) + 1]
    assert all(isinstance(t, int) for t in times) and len(set(times)) == 1
    assert isinstance(outcomes[-2], NotFoundError)
    assert isinstance(outcomes[-1], InvalidArgumentError)
    seen = {d.id: d.last_seen_us for d in store.list_devices(page_size=100).items}
    assert all(seen[d] == times[0] for d in devices)


REQUEST = "123e4567-e89b-42d3-a456-426614174000"


def test_a_batch_of_enrolments_is_one_call_each_failing_alone_retries_kept_apart(
    store: RegistryStore,
) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    before = len(store.changes_after(0))
    batcher = WriteBatcher(store.database, max_batch=64)
    calls: list[int] = []

    def counting(c, enrolments):  # type: ignore[no-untyped-def]
        calls.append(len(enrolments))
        return RegistryStore.register_devices_in(c, enrolments)

    asked = [
        *(_enrolment("pis", f"hw-{i}") for i in range(20)),
        _enrolment("pis", "twin"),  # two alike without a request_id: two devices
        _enrolment("pis", "twin"),
        _enrolment("nope", "lost"),  # a fleet that does not exist
        _enrolment("pis", "x" * 10_000),  # a hardware id over its bound
        _enrolment("pis", "retried", REQUEST),  # an enrolment and its retry, one batch
        _enrolment("pis", "retried", REQUEST),
        _enrolment("pis", "other", REQUEST),  # the same request for another device
    ]

    async def burst() -> list[object]:
        answers = [batcher.submit_shared(counting, e) for e in asked]
        return await asyncio.gather(*answers, return_exceptions=True)

    outcomes = asyncio.run(burst())
    assert calls == [len(asked)]
    devices = [o[0] for o in outcomes if isinstance(o, tuple)]  # type: ignore[index]
    assert len(devices) == 24
    assert devices[20].id != devices[21].id  # the twins
    assert isinstance(outcomes[22], NotFoundError)
    assert isinstance(outcomes[23], InvalidArgumentError)
    first, retry = outcomes[24], outcomes[25]
    assert first[0].id == retry[0].id  # type: ignore[index]
    assert isinstance(outcomes[26], InvalidArgumentError)
    assert store.device_for_token(retry[1]) is not None  # type: ignore[index]
    assert store.device_for_token(first[1]) is None  # the retry's token replaced it
    new = store.changes_after(0)[before:]
    assert [c.cursor for c in new] == list(range(before + 1, before + 24))  # one per device
    assert {c.entity_id for c in new} == {d.id for d in devices}
