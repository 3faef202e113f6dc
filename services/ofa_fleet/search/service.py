"""The search service assembled: supernet and predictor loaded, workers warm, servicer.

Loading is the slow part (a Ray start, the supernet in every worker, perhaps a predictor
fit), so it happens once, before the server reports SERVING; each `Specialize` then pays
only for its own search.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ray
from google.longrunning import operations_pb2_grpc
from prometheus_client import CollectorRegistry

from ofa_fleet.core.checkpoint import load_checkpoint
from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.hardware.profile_proto import profile_from_proto
from ofa_fleet.search.access_rules import RULES, SERVICE
from ofa_fleet.search.accuracy_source import FIT_SAMPLES, resolve_accuracy_predictor
from ofa_fleet.search.bundle import SupernetBundle
from ofa_fleet.search.jobs import DEFAULT_DETACHED_GRACE_SECONDS
from ofa_fleet.search.ledger_source import load_supernet_ledger
from ofa_fleet.search.metrics import SearchMetrics
from ofa_fleet.search.operations import SearchOperationsServicer
from ofa_fleet.search.servicer import DEFAULT_CONCURRENCY, ProfileLookup, SearchServicer
from ofa_fleet.search.specializer import Specializer
from ofa_fleet.search.workers import SearchWorkers
from ofa_fleet.serving import long_running
from ofa_fleet.serving.client import open_aio_channel, upstream_errors
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.serving.server import Service
from ofa_fleet.serving.tls import TlsFiles
from ofa_fleet.training.checkpoint_data import load_checkpoint_data
from ofa_fleet.v1 import registry_pb2_grpc, search_pb2_grpc


def load_specializer(
    checkpoint_path: Path,
    predictor_path: Path | None = None,
    data: str | None = None,
    slots: int | None = None,
    on_fit: Callable[[int, int], None] | None = None,
    fit_samples: int = FIT_SAMPLES,
) -> Specializer:
    """Load the checkpoint, find or fit its accuracy predictor, warm the Ray workers.

    The supernet's carbon ledger is read last, once the predictor (and its fit cost) is
    beside the checkpoint. Ray must be started (`ray_runtime.start_ray`) first.
    """
    checkpoint = load_checkpoint(checkpoint_path)
    splits = load_checkpoint_data(checkpoint, data)
    accuracy = resolve_accuracy_predictor(
        checkpoint_path,
        checkpoint,
        lambda: SearchWorkers(SupernetBundle.of(checkpoint, splits, None), slots),
        predictor_path,
        fit_samples,
        on_fit,
    )
    workers = SearchWorkers(SupernetBundle.of(checkpoint, splits, accuracy), slots)
    workers.warm_up()
    ledger = load_supernet_ledger(checkpoint_path, checkpoint)
    supernet = checkpoint.supernet
    return Specializer(
        checkpoint.space,
        workers,
        supernet.in_channels,
        supernet.num_classes,
        supernet_ledger=ledger,
    )


@dataclass(frozen=True)
class Search:
    service: Service
    # google.longrunning.Operations (its searches), served beside it.
    operations: Service
    servicer: SearchServicer


def search_service(
    specializer: Specializer,
    lookup: ProfileLookup | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    metrics: CollectorRegistry | None = None,
    detached_grace_seconds: float = DEFAULT_DETACHED_GRACE_SECONDS,
) -> Search:
    servicer = SearchServicer(specializer, lookup, concurrency, detached_grace_seconds)
    operations = SearchOperationsServicer(servicer.jobs)
    if metrics is not None:
        servicer.metrics = SearchMetrics(metrics, lambda: servicer.active)

    async def ready() -> bool:
        # A call to Ray's control store: off the event loop, like any blocking call.
        return await asyncio.to_thread(
            lambda: ray.is_initialized() and bool(ray.cluster_resources().get("CPU"))
        )

    return Search(
        Service(
            name=SERVICE,
            register=lambda server: search_pb2_grpc.add_SearchServiceServicer_to_server(
                servicer, server
            ),
            rules=RULES,
            ready=ready,
            stopping=servicer.close,
        ),
        Service(
            name=long_running.SERVICE,
            register=lambda server: operations_pb2_grpc.add_OperationsServicer_to_server(
                operations, server
            ),
            rules=long_running.RULES,
            ready=ready,
        ),
        servicer,
    )


def registry_lookup(address: str, token: str, tls: TlsFiles | None = None) -> ProfileLookup:
    """Profiles by name from the registry at ``address``, with the operator token."""
    registry = RegistryClient(
        registry_pb2_grpc.RegistryServiceStub(open_aio_channel(address, tls)),
        token,
        errors=upstream_errors(f"the registry at {address}"),
    )

    async def lookup(name: str) -> HardwareProfile:
        profile = await registry.get_profile(name)
        return profile_from_proto(profile.spec, "profile")

    return lookup
