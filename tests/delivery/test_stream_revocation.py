"""`Revocations.until_revoked` on its own: a stream that ends, one revoked, one whose
client goes away while the next item is awaited."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ofa_fleet.delivery.serve.device_auth import RegistryDeviceAuthenticator
from ofa_fleet.delivery.serve.revocations import Revocations
from ofa_fleet.errors import UnauthenticatedError


def revocations() -> Revocations:
    return Revocations(None, "", RegistryDeviceAuthenticator(None))  # type: ignore[arg-type]


async def items(count: int, pause: float) -> AsyncIterator[int]:
    for item in range(count):
        await asyncio.sleep(pause)
        yield item
    await asyncio.sleep(pause)  # and then ends (a watch the server closed)


async def collect(stream: AsyncIterator[int]) -> list[int]:
    return [item async for item in stream]


def run_reporting_loop_errors(work: Any) -> list[dict[str, Any]]:
    """Run ``work`` on a fresh loop; what the loop reported as unhandled errors."""
    errors: list[dict[str, Any]] = []
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        loop.run_until_complete(work())
        gc.collect()  # an unretrieved task's error is reported when it is collected
        loop.run_until_complete(asyncio.sleep(0.05))
    finally:
        loop.close()
    return errors


def test_the_stream_passes_every_item_and_ends_with_its_source():
    async def work() -> None:
        assert await collect(revocations().until_revoked("d", items(3, 0))) == [0, 1, 2]

    assert run_reporting_loop_errors(work) == []


def test_a_revoked_device_stream_ends_unauthenticated():
    async def work() -> None:
        gate = revocations()
        later = asyncio.get_running_loop().call_later(0.05, gate.revoke, "d")
        with pytest.raises(UnauthenticatedError):
            await collect(gate.until_revoked("d", items(100, 0.01)))
        later.cancel()

    assert run_reporting_loop_errors(work) == []


def test_a_client_gone_while_the_next_item_is_awaited_leaves_no_unretrieved_error():
    async def work() -> None:
        source = items(0, 0.2)  # its end comes after the client left
        reading = asyncio.ensure_future(collect(revocations().until_revoked("d", source)))
        await asyncio.sleep(0.05)
        reading.cancel()  # what gRPC does to the handler when the client goes away
        with pytest.raises(asyncio.CancelledError):
            await reading
        await asyncio.sleep(0.4)  # long past when the source would have ended

    assert run_reporting_loop_errors(work) == []
