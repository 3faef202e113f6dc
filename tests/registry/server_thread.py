"""A real registry server on a loopback port, served from a background thread.

Tests talk to it with ordinary synchronous gRPC stubs, over a real socket, exactly as a
device or the CLI would.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import grpc

from ofa_fleet.contract.heartbeat import DEFAULT_HEARTBEAT_SECONDS
from ofa_fleet.registry.migrations import REGISTRY_MIGRATIONS
from ofa_fleet.registry.service import registry_authenticator, registry_service
from ofa_fleet.registry.store import RegistryStore
from ofa_fleet.serving.metrics_endpoint import MetricsEndpoint
from ofa_fleet.serving.server import Server, ServerConfig
from ofa_fleet.storage.database import Database, DatabaseUrl
from ofa_fleet.v1 import registry_pb2_grpc
from tests.loop_thread import LoopThread
from tests.server_process import OPERATOR_TOKEN


class RegistryServerThread:
    def __init__(
        self,
        db_url: str,
        config: ServerConfig | None = None,
        operator_token: str = OPERATOR_TOKEN,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        self.db_url = db_url
        self.heartbeat_seconds = heartbeat_seconds
        self.config = config or ServerConfig(grace_seconds=1.0)
        self.operator_token = operator_token
        self._loop: LoopThread | None = None
        self.server: Server | None = None
        self.store: RegistryStore | None = None
        self.database: Database | None = None
        self.port = 0

    def __enter__(self) -> RegistryServerThread:
        self._loop = LoopThread()
        self._loop.run(self._start())
        return self

    async def _start(self) -> None:
        self.database = Database(DatabaseUrl.parse(self.db_url), REGISTRY_MIGRATIONS)
        await asyncio.to_thread(self.database.migrate)
        metrics = MetricsEndpoint.create()
        registry = registry_service(
            self.database,
            poll_seconds=0.2,
            metrics=metrics.registry,
            heartbeat_seconds=self.heartbeat_seconds,
        )
        self.store = registry.store
        self.server = Server(
            self.config,
            [registry.service],
            registry_authenticator(self.operator_token, registry),
            metrics,
        )
        self.port = await self.server.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address)

    def stub(self, channel: grpc.Channel) -> registry_pb2_grpc.RegistryServiceStub:
        return registry_pb2_grpc.RegistryServiceStub(channel)

    def stop_serving(self) -> None:
        """Stop the server gracefully but keep its event loop running (see `stop`)."""
        if self.server is not None and self._loop is not None:
            self._loop.run(self.server.stop())
            self.server = None

    def stop(self) -> None:
        """Stop serving, then close the database and the loop.

        A test that watches what clients see on shutdown calls `stop_serving` first and
        waits for its clients: a loop stopped at once could leave their last frames unsent.
        """
        self.stop_serving()
        if self.database is not None:
            self.database.close()
            self.database = None
        if self._loop is not None:
            self._loop.close()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
