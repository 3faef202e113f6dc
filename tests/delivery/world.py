"""A real registry and a real delivery server on loopback, a profile, a fleet of two devices."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.v1 import (
    delivery_pb2,
    delivery_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
)
from tests.delivery.conftest import blob_store, manifest_for, model_bytes, open_database
from tests.delivery.server_thread import DeliveryServerThread
from tests.registry.conftest import example_profile
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.server_process import OPERATOR_TOKEN

OPERATOR = bearer(OPERATOR_TOKEN)
CHUNK = 16 * 1024
PROFILE = "raspberry-pi-4"


@dataclass
class World:
    registry: registry_pb2_grpc.RegistryServiceStub
    delivery: delivery_pb2_grpc.DeliveryServiceStub
    store: ModelStore
    signer: ModelSigner
    devices: list[registry_pb2.RegisterDeviceResponse]
    metrics: CollectorRegistry  # the delivery server's, as /metrics serves it
    registry_address: str = ""
    delivery_address: str = ""

    def add_model(
        self, seed: int, size: int = 100_000, current: bool = True, profile: str = PROFILE
    ) -> bytes:
        data = model_bytes(seed, size)
        manifest = manifest_for(data, profile)
        self.store.add(manifest, self.signer.sign(manifest), data)
        if current:
            self.store.set_current(profile, manifest.sha256, "missing")
        return data

    def get_model(self, device: int = 0, timeout: float = 10, **fields) -> list:
        enrolled = self.devices[device]
        request = delivery_pb2.GetModelRequest(device_id=enrolled.device.id, **fields)
        return list(
            self.delivery.GetModel(request, metadata=bearer(enrolled.device_token), timeout=timeout)
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    database = open_database(f"sqlite:///{tmp_path / 'delivery.db'}")
    store = ModelStore(database, blob_store("files", database, tmp_path / "blobs"))
    with (
        RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry,
        registry.channel() as channel,
    ):
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        stub.CreateProfile(
            registry_pb2.CreateProfileRequest(profile=profile_to_proto(example_profile())),
            metadata=OPERATOR,
            timeout=10,
        )
        devices = enrol(stub, registry_pb2.CreateFleetRequest(name="pis", profile=PROFILE), 2)
        with (
            DeliveryServerThread(
                store, tmp_path / "signing.key", registry.address, CHUNK
            ) as delivery,
            grpc.insecure_channel(delivery.address) as delivery_channel,
        ):
            yield World(
                stub,
                delivery_pb2_grpc.DeliveryServiceStub(delivery_channel),
                store,
                delivery.signer,
                devices,
                delivery.metrics.registry,
                registry.address,
                delivery.address,
            )
    database.close()


def enrol(
    registry: registry_pb2_grpc.RegistryServiceStub,
    fleet: registry_pb2.CreateFleetRequest,
    count: int,
) -> list[registry_pb2.RegisterDeviceResponse]:
    created = registry.CreateFleet(fleet, metadata=OPERATOR, timeout=10)
    return [
        registry.RegisterDevice(
            registry_pb2.RegisterDeviceRequest(hardware_id=f"{fleet.name}-{i}"),
            metadata=bearer(created.enrolment_token),
            timeout=10,
        )
        for i in range(count)
    ]


def assemble(responses: list) -> tuple[delivery_pb2.ModelManifest, bytes, int]:
    manifest, data, first_offset = responses[0].manifest, bytearray(), -1
    for response in responses[1:]:
        chunk = response.chunk
        if first_offset < 0:
            first_offset = chunk.offset
        assert len(chunk.data) <= manifest.chunk_size
        data += chunk.data
    return manifest, bytes(data), first_offset
