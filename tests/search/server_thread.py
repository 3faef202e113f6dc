"""A real search server on a loopback port, served from a background thread."""

from __future__ import annotations

import grpc

from ofa_fleet.search.service import Search, registry_lookup, search_service
from ofa_fleet.search.specializer import Specializer
from ofa_fleet.serving.access import OperatorAuthenticator
from ofa_fleet.serving.metrics_endpoint import MetricsEndpoint
from ofa_fleet.serving.server import Server, ServerConfig
from ofa_fleet.v1 import search_pb2_grpc
from tests.loop_thread import ServerThread
from tests.server_process import OPERATOR_TOKEN


class SearchServerThread(ServerThread):
    def __init__(
        self,
        specializer: Specializer,
        registry_address: str | None = None,
        port: int = 0,
        detached_grace_seconds: float = 0.0,
    ) -> None:
        """``detached_grace_seconds``: 0 by default, so a test that cancels its call sees
        the search stop at once."""
        super().__init__(port)
        self.detached_grace_seconds = detached_grace_seconds
        self.specializer = specializer
        self.registry_address = registry_address
        self.search: Search | None = None
        self.metrics = MetricsEndpoint.create()

    async def build(self) -> Server:
        lookup = None
        if self.registry_address is not None:
            lookup = registry_lookup(self.registry_address, OPERATOR_TOKEN)
        self.search = search_service(
            self.specializer,
            lookup,
            metrics=self.metrics.registry,
            detached_grace_seconds=self.detached_grace_seconds,
        )
        return Server(
            ServerConfig(port=self.requested_port, grace_seconds=1.0),
            [self.search.service, self.search.operations],
            OperatorAuthenticator(OPERATOR_TOKEN),
            self.metrics,
        )

    @property
    def active(self) -> int:
        assert self.search is not None
        return self.search.servicer.active

    def stub(self, channel: grpc.Channel) -> search_pb2_grpc.SearchServiceStub:
        return search_pb2_grpc.SearchServiceStub(channel)
