"""A real delivery server on a loopback port, beside a real registry, in background threads."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ofa_fleet.delivery.reconcile.reconciler import ReconcilerSettings
from ofa_fleet.delivery.serve.model_urls import ModelUrls
from ofa_fleet.delivery.service import Delivery, delivery_service
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.serving.metrics_endpoint import MetricsEndpoint
from ofa_fleet.serving.server import Server, ServerConfig
from tests.loop_thread import ServerThread
from tests.server_process import OPERATOR_TOKEN


class DeliveryServerThread(ServerThread):
    def __init__(
        self,
        store: ModelStore,
        key_path: Path,
        registry_address: str,
        chunk_bytes: int,
        search_address: str | None = None,
        settings: ReconcilerSettings | None = None,
        port: int = 0,
        model_urls: ModelUrls | None = None,
    ) -> None:
        self.model_urls = model_urls
        super().__init__(port)
        self.store = store
        self.signer = ModelSigner.load_or_create(key_path)
        self.registry_address = registry_address
        self.chunk_bytes = chunk_bytes
        self.search_address = search_address
        self.settings = settings
        self.delivery: Delivery | None = None
        self.reconciling: asyncio.Task[None] | None = None
        self.metrics = MetricsEndpoint.create()

    async def build(self) -> Server:
        self.delivery = delivery_service(
            self.store,
            self.signer,
            self.registry_address,
            OPERATOR_TOKEN,
            chunk_bytes=self.chunk_bytes,
            search_address=self.search_address,
            settings=self.settings,
            metrics=self.metrics.registry,
            model_urls=self.model_urls,
        )
        config = ServerConfig(port=self.requested_port, grace_seconds=1.0)
        services = [self.delivery.service, self.delivery.operations]
        return Server(config, services, self.delivery.authenticator, self.metrics)

    async def started(self) -> None:
        assert self.delivery is not None
        if self.delivery.reconciler is not None:
            self.reconciling = asyncio.create_task(self.delivery.reconciler.run())

    async def stopped(self) -> None:
        if self.reconciling is not None:  # the server's stop told the reconciler to stop
            await asyncio.wait_for(self.reconciling, timeout=30)
