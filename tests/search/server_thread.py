"""A real search server on a loopback port, served from a background thread."""

from __future__ import annotations

from types import TracebackType

import grpc

from ofa_fleet.search.service import Search, registry_lookup, search_service
from ofa_fleet.search.specializer import Specializer
from ofa_fleet.serving.access import OperatorAuthenticator
from ofa_fleet.serving.server import Server, ServerConfig
from ofa_fleet.v1 import search_pb2_grpc
from tests.loop_thread import LoopThread
from tests.server_process import OPERATOR_TOKEN


class SearchServerThread:
    def __init__(self, specializer: Specializer, registry_address: str | None = None) -> None:
        self.specializer = specializer
        self.registry_address = registry_address
        self.loop = LoopThread()
        self.server: Server | None = None
        self.search: Search | None = None
        self.port = 0

    def __enter__(self) -> SearchServerThread:
        self.loop.run(self._start())
        return self

    async def _start(self) -> None:
        lookup = None
        if self.registry_address is not None:
            lookup = registry_lookup(self.registry_address, OPERATOR_TOKEN)
        self.search = search_service(self.specializer, lookup)
        self.server = Server(
            ServerConfig(grace_seconds=1.0),
            [self.search.service],
            OperatorAuthenticator(OPERATOR_TOKEN),
        )
        self.port = await self.server.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def active(self) -> int:
        assert self.search is not None
        return self.search.servicer.active

    def stub(self, channel: grpc.Channel) -> search_pb2_grpc.SearchServiceStub:
        return search_pb2_grpc.SearchServiceStub(channel)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.server is not None:
            self.loop.run(self.server.stop())
        self.loop.close()
