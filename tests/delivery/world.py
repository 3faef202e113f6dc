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

    def get_manifest(
        self, device: int = 0, have_sha256: str = "", timeout: float = 10
    ) -> delivery_pb2.GetModelManifestResponse:
        enrolled = self.devices[device]
        request = delivery_pb2.GetModelManifestRequest(
            device=enrolled.device.name, have_sha256=have_sha256
        )
        return self.delivery.GetModelManifest(
            request, metadata=bearer(enrolled.device_token), timeout=timeout
        )

    def read_model(
        self, sha256: str, device: int = 0, offset: int = 0, limit: int = 0
    ) -> tuple[bytes, int]:
        """The bytes ReadModel sent, and the offset of its first chunk (-1 for none)."""
        request = delivery_pb2.ReadModelRequest(sha256=sha256, read_offset=offset, read_limit=limit)
        stream = self.delivery.ReadModel(
            request, metadata=bearer(self.devices[device].device_token), timeout=10
        )
        return assemble(list(stream))

    def download(self, device: int = 0) -> tuple[delivery_pb2.ModelManifest, bytes]:
        """The device's manifest and its model's bytes, read whole."""
        manifest = self.get_manifest(device).manifest
        data, first = self.read_model(manifest.sha256, device)
        assert first == 0
        return manifest, data


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
        devices = enrol(
            stub,
            registry_pb2.CreateFleetRequest(
                fleet_id="pis", fleet=registry_pb2.Fleet(profile=f"profiles/{PROFILE}")
            ),
            2,
        )
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
            registry_pb2.RegisterDeviceRequest(hardware_id=f"{fleet.fleet.name}-{i}"),
            metadata=bearer(created.enrolment_token),
            timeout=10,
        )
        for i in range(count)
    ]


def assemble(responses: list[delivery_pb2.ReadModelResponse]) -> tuple[bytes, int]:
    """A ReadModel stream's bytes (each chunk within the bound, in order) and first offset."""
    data, first_offset = bytearray(), -1
    for response in responses:
        chunk = response.chunk
        if first_offset < 0:
            first_offset = chunk.offset
        assert chunk.offset == first_offset + len(data)
        assert 0 < len(chunk.data) <= CHUNK
        data += chunk.data
    return bytes(data), first_offset
