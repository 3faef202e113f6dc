"""The delivery service assembled: store, signer, registry clients, servicer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ofa_fleet.delivery.access_rules import RULES, SERVICE
from ofa_fleet.delivery.device_auth import RegistryDeviceAuthenticator
from ofa_fleet.delivery.model_store import ModelStore
from ofa_fleet.delivery.servicer import CHUNK_BYTES, DeliveryServicer
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.delivery.targets import FleetDirectory, TargetModels
from ofa_fleet.serving.access import OperatorAuthenticator
from ofa_fleet.serving.client import open_aio_channel
from ofa_fleet.serving.server import Service
from ofa_fleet.serving.tls import TlsFiles
from ofa_fleet.v1 import delivery_pb2_grpc, registry_pb2_grpc


@dataclass(frozen=True)
class Delivery:
    service: Service
    servicer: DeliveryServicer
    authenticator: OperatorAuthenticator


def delivery_service(
    store: ModelStore,
    signer: ModelSigner,
    registry_address: str,
    operator_token: str,
    registry_tls: TlsFiles | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Delivery:
    """Call from inside the event loop that will serve (the registry channel binds to it)."""
    registry = registry_pb2_grpc.RegistryServiceStub(
        open_aio_channel(registry_address, registry_tls)
    )
    devices = RegistryDeviceAuthenticator(registry)
    targets = TargetModels(store, FleetDirectory(registry, operator_token))
    servicer = DeliveryServicer(store, signer, devices, targets, chunk_bytes)

    async def ready() -> bool:
        return await asyncio.to_thread(store.database.ping)

    service = Service(
        name=SERVICE,
        register=lambda server: delivery_pb2_grpc.add_DeliveryServiceServicer_to_server(
            servicer, server
        ),
        rules=RULES,
        ready=ready,
    )
    return Delivery(service, servicer, OperatorAuthenticator(operator_token, [devices]))
