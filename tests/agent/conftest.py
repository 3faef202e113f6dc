"""Fixtures of the agent's boot tests: real ONNX models, a registry, a delivery, a fleet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ofa_fleet.delivery.store.model_store import ModelStore
from tests.agent.fleet import CHUNK, Fleet
from tests.agent.onnx_models import tiny_onnx
from tests.delivery.conftest import blob_store, open_database
from tests.delivery.server_thread import DeliveryServerThread
from tests.registry.server_thread import RegistryServerThread


@pytest.fixture(scope="session")
def model_a() -> bytes:
    return tiny_onnx(1)


@pytest.fixture(scope="session")
def model_b() -> bytes:
    return tiny_onnx(2)


@pytest.fixture(scope="session")
def broken_model() -> bytes:
    """Loads and verifies, but answers zeros with non-finite logits."""
    return tiny_onnx(3, broken=True)


HEARTBEAT_SECONDS = 0.2


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServerThread]:
    # Running agents heartbeat as often as the registry says: often, so tests see it.
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with RegistryServerThread(url, heartbeat_seconds=HEARTBEAT_SECONDS) as server:
        yield server


@pytest.fixture
def fleet_without_delivery(registry: RegistryServerThread, tmp_path: Path) -> Iterator[Fleet]:
    """The registry and delivery's store, with no delivery server yet."""
    database = open_database(f"sqlite:///{tmp_path / 'delivery.db'}")
    store = ModelStore(database, blob_store("files", database, tmp_path / "blobs"))
    fleet = Fleet(registry, store, tmp_path / "signing.key", tmp_path)
    try:
        yield fleet
    finally:
        fleet.close()
        database.close()


@pytest.fixture
def fleet(fleet_without_delivery: Fleet) -> Iterator[Fleet]:
    """Registry and delivery serving, the fleet created, no model published yet."""
    fleet = fleet_without_delivery
    with DeliveryServerThread(
        fleet.store, fleet.key_path, fleet.registry.address, CHUNK
    ) as delivery:
        fleet.delivery_address = delivery.address
        yield fleet
