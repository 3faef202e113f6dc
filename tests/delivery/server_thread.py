"""A real delivery server on a loopback port, beside a real registry, in background threads."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType

from ofa_fleet.delivery.model_store import ModelStore
from ofa_fleet.delivery.reconciler import ReconcilerSettings
from ofa_fleet.delivery.service import Delivery, delivery_service
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.serving.server import Server, ServerConfig
from tests.loop_thread import LoopThread
from tests.server_process import OPERATOR_TOKEN


class DeliveryServerThread:
    def __init__(
        self,
        store: ModelStore,
        key_path: Path,
        registry_address: str,
        chunk_bytes: int,
        search_address: str | None = None,
        settings: ReconcilerSettings | None = None,
        port: int = 0,
    ) -> None:
        self.requested_port = port
        self.search_address = search_address
        self.settings = settings
        self.reconciling: asyncio.Task[None] | None = None
        self.store = store
        self.signer = ModelSigner.load_or_create(key_path)
        self.registry_address = registry_address
        self.chunk_bytes = chunk_bytes
        self.loop = LoopThread()
        self.server: Server | None = None
        self.delivery: Delivery | None = None
        self.port = 0

    def __enter__(self) -> DeliveryServerThread:
        self.loop.run(self._start())
        return self

    async def _start(self) -> None:
        self.delivery = delivery_service(
            self.store,
            self.signer,
            self.registry_address,
            OPERATOR_TOKEN,
            chunk_bytes=self.chunk_bytes,
            search_address=self.search_address,
            settings=self.settings,
        )
        self.server = Server(
            ServerConfig(port=self.requested_port, grace_seconds=1.0),
            [self.delivery.service],
            self.delivery.authenticator,
        )
        self.port = await self.server.start()
        if self.delivery.reconciler is not None:
            self.reconciling = asyncio.create_task(self.delivery.reconciler.run())

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.server is not None:
            self.loop.run(self.server.stop())  # stops the reconciler too
        if self.reconciling is not None:
            self.loop.run(asyncio.wait_for(self.reconciling, timeout=30))
        self.loop.close()
