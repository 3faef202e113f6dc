"""Following the registry's change feed: a stream closed after a while (the registry's
connection age) is routine and logged at info; a registry that cannot be reached is a
warning."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest
from grpc import aio

from ofa_fleet.serving import change_follower
from ofa_fleet.serving.server import ServerConfig
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc
from tests.loop_thread import LoopThread
from tests.registry.server_thread import OPERATOR_TOKEN, RegistryServerThread


def follow_for(address: str, seconds: float) -> None:
    """Follow the device deletions at `address` for `seconds`, on a loop of its own."""

    async def follow() -> None:
        async with aio.insecure_channel(address) as channel:
            following = asyncio.ensure_future(
                change_follower.follow_changes(
                    registry_pb2_grpc.RegistryServiceStub(channel),
                    OPERATOR_TOKEN,
                    [registry_pb2.CHANGE_KIND_DEVICE],
                    [registry_pb2.CHANGE_OPERATION_DELETED],
                    lambda change: None,
                    lambda: None,
                    "test feed",
                )
            )
            await asyncio.sleep(seconds)
            following.cancel()
            with pytest.raises(asyncio.CancelledError):
                await following

    loop = LoopThread()
    try:
        loop.run(follow())
    finally:
        loop.close()


def interruptions(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [r.levelno for r in caplog.records if r.getMessage() == "test feed interrupted"]


def test_a_stream_closed_by_the_connection_age_is_routine(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(change_follower, "ROUTINE_AFTER_SECONDS", 1.0)
    config = ServerConfig(
        grace_seconds=1.0, max_connection_age_seconds=1.0, max_connection_age_grace_seconds=0.5
    )
    with (
        RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}", config) as registry,
        caplog.at_level(logging.INFO, logger="ofa_fleet.delivery"),
    ):
        follow_for(registry.address, 5.0)
    # Each closed stream is an info line (a reconnection that races the closing
    # connection may still fail at once, which is a warning: not asserted either way).
    assert logging.INFO in interruptions(caplog)


def test_a_registry_that_cannot_be_reached_is_a_warning(caplog: pytest.LogCaptureFixture):
    with socket.socket() as closed, caplog.at_level(logging.INFO, logger="ofa_fleet.delivery"):
        closed.bind(("127.0.0.1", 0))
        follow_for(f"127.0.0.1:{closed.getsockname()[1]}", 1.5)
    levels = interruptions(caplog)
    assert levels and set(levels) == {logging.WARNING}
