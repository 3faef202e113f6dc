"""An asyncio event loop in a background thread, for serving real gRPC servers in tests.

Tests talk to the servers with ordinary synchronous stubs over a real socket, as a
device or the CLI would, while the server runs on this loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

from ofa_fleet.serving.server import Server

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def close(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)


class ServerThread:
    """A server that `build` makes inside the loop, served from a background thread.

    Subclasses build their service; `started` and `stopped` run extra work beside it
    (a reconciler) in the same loop.
    """

    def __init__(self, port: int = 0) -> None:
        self.requested_port = port
        self.loop = LoopThread()
        self.server: Server | None = None
        self.port = 0

    async def build(self) -> Server:
        raise NotImplementedError

    async def started(self) -> None:
        """Called once the server listens."""

    async def stopped(self) -> None:
        """Called once the server has stopped."""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.loop.run(self._start())
        return self

    async def _start(self) -> None:
        self.server = await self.build()
        self.port = await self.server.start()
        await self.started()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.server is not None:
            self.loop.run(self.server.stop())
            self.loop.run(self.stopped())
        self.loop.close()
