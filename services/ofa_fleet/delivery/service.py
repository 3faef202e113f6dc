"""The delivery service assembled: store, signer, registry clients, servicer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from google.longrunning import operations_pb2_grpc
from prometheus_client import CollectorRegistry

from ofa_fleet.delivery.carbon.report import CarbonReport
from ofa_fleet.delivery.carbon.totals import CarbonTotals
from ofa_fleet.delivery.fleets.targets import FleetDirectory, TargetModels
from ofa_fleet.delivery.reconcile.metrics import DeliveryMetrics
from ofa_fleet.delivery.reconcile.reconciler import Reconciler, ReconcilerSettings
from ofa_fleet.delivery.serve.access_rules import RULES, SERVICE
from ofa_fleet.delivery.serve.device_auth import RegistryDeviceAuthenticator
from ofa_fleet.delivery.serve.model_urls import ModelUrls
from ofa_fleet.delivery.serve.model_watch import TargetWatch
from ofa_fleet.delivery.serve.revocations import Revocations
from ofa_fleet.delivery.serve.servicer import CHUNK_BYTES, DeliveryServicer
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.specializations import Specializations
from ofa_fleet.delivery.store.supernet_ledgers import SupernetLedgers
from ofa_fleet.serving import long_running
from ofa_fleet.serving.access import OperatorAuthenticator
from ofa_fleet.serving.client import open_aio_channel
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.serving.server import Service
from ofa_fleet.serving.tls import TlsFiles
from ofa_fleet.v1 import delivery_pb2_grpc, registry_pb2_grpc, search_pb2_grpc


@dataclass(frozen=True)
class Delivery:
    """The bootstrap's parts, and the reconciler the caller runs beside the server."""

    service: Service
    # google.longrunning.Operations (Respecialize's), served beside it.
    operations: Service
    servicer: DeliveryServicer
    authenticator: OperatorAuthenticator
    reconciler: Reconciler | None
    metrics: DeliveryMetrics


def delivery_service(
    store: ModelStore,
    signer: ModelSigner,
    registry_address: str,
    operator_token: str,
    registry_tls: TlsFiles | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    search_address: str | None = None,
    search_tls: TlsFiles | None = None,
    settings: ReconcilerSettings | None = None,
    metrics: CollectorRegistry | None = None,
    model_urls: ModelUrls | None = None,
) -> Delivery:
    """Call from inside the event loop that will serve (the channels bind to it).

    Without ``search_address`` no reconciler runs: this replica serves what the store
    holds (several replicas may serve while one reconciles). ``metrics``: where delivery's
    own metrics go (the server's `MetricsEndpoint.registry`); None keeps them unexported.
    """
    registry = registry_pb2_grpc.RegistryServiceStub(
        open_aio_channel(registry_address, registry_tls)
    )
    devices = RegistryDeviceAuthenticator(registry)
    fleets = FleetDirectory(registry, operator_token)
    targets = TargetModels(store, fleets)
    ledger = Specializations(store.database)
    supernets = SupernetLedgers(store.database)
    figures = DeliveryMetrics(
        metrics or CollectorRegistry(), ledger, CarbonTotals(store, supernets)
    )
    carbon = CarbonReport(
        store, supernets, RegistryClient(registry, operator_token), targets.rollouts
    )
    watch = TargetWatch(targets)
    reconciler = None
    if search_address is not None:
        search = search_pb2_grpc.SearchServiceStub(open_aio_channel(search_address, search_tls))
        reconciler = Reconciler(
            store,
            ledger,
            signer,
            registry,
            search,
            operator_token,
            settings,
            watch.notify,
            figures,
        )
    revocations = Revocations(registry, operator_token, devices)
    servicer = DeliveryServicer(
        store,
        signer,
        devices,
        targets,
        ledger,
        watch,
        reconciler,
        chunk_bytes,
        figures,
        carbon,
        revocations,
        model_urls,
    )

    def stopping() -> None:
        watch.close()  # watch streams end, so shutdown need not wait out the grace period
        if reconciler is not None:
            reconciler.stop()

    async def ready() -> bool:
        return await asyncio.to_thread(store.database.ping)

    service = Service(
        name=SERVICE,
        register=lambda server: delivery_pb2_grpc.add_DeliveryServiceServicer_to_server(
            servicer, server
        ),
        rules=RULES,
        ready=ready,
        stopping=stopping,
        background=lambda: _follow_registry(revocations, fleets, watch),
    )
    operations = Service(
        name=long_running.SERVICE,
        register=lambda server: operations_pb2_grpc.add_OperationsServicer_to_server(
            servicer.operations, server
        ),
        rules=long_running.RULES,
        ready=ready,
    )
    authenticator = OperatorAuthenticator(operator_token, [devices])
    return Delivery(service, operations, servicer, authenticator, reconciler, figures)


async def _follow_registry(
    revocations: Revocations, fleets: FleetDirectory, watch: TargetWatch
) -> None:
    """What this replica learns from the registry's change feed: deleted devices lose
    access, and a changed fleet's devices are told what it runs now."""
    await asyncio.gather(revocations.follow(), fleets.follow_updates(watch.notify))
