"""A registry and a delivery on loopback with a fleet whose profile has a model, for the
fleet simulator's tests; the agent's test fleet (`tests/agent/fleet.py`) provides them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.fleet.simulator import SimulationSettings
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.v1 import registry_pb2
from tests.agent.fleet import CHUNK, FAST_BACKOFF, FAST_TIMING, Fleet
from tests.agent.onnx_models import tiny_onnx
from tests.delivery.conftest import blob_store, open_database
from tests.delivery.server_thread import DeliveryServerThread
from tests.registry.conftest import example_profile
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.server_process import OPERATOR_TOKEN

EMPTY_PROFILE = "x86-gateway"


@pytest.fixture(scope="session")
def model() -> bytes:
    return tiny_onnx(1)


@pytest.fixture
def fleet(tmp_path: Path, model: bytes) -> Iterator[Fleet]:
    """Registry and delivery serving fleet `pis`, whose profile has `model` as current."""
    database = open_database(f"sqlite:///{tmp_path / 'delivery.db'}")
    store = ModelStore(database, blob_store("files", database, tmp_path / "blobs"))
    with RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        fleet = Fleet(registry, store, tmp_path / "signing.key", tmp_path)
        try:
            with DeliveryServerThread(store, fleet.key_path, registry.address, CHUNK) as delivery:
                fleet.delivery_address = delivery.address
                fleet.publish(model)
                yield fleet
        finally:
            fleet.close()
            database.close()


def empty_fleet_token(fleet: Fleet) -> str:
    """The enrolment token of a second fleet, whose profile has no model at all."""
    fleet.stub.CreateProfile(
        registry_pb2.CreateProfileRequest(profile=profile_to_proto(example_profile(EMPTY_PROFILE))),
        metadata=bearer(OPERATOR_TOKEN),
        timeout=10,
    )
    created = fleet.stub.CreateFleet(
        registry_pb2.CreateFleetRequest(
            fleet_id="gateways", fleet=registry_pb2.Fleet(profile=f"profiles/{EMPTY_PROFILE}")
        ),
        metadata=bearer(OPERATOR_TOKEN),
        timeout=10,
    )
    return created.enrolment_token


def settings(
    fleet: Fleet, state_root: Path, devices: int, **overrides: object
) -> SimulationSettings:
    values: dict[str, object] = {
        "registry": fleet.registry.address,
        "delivery": fleet.delivery_address,
        "fleet_token": fleet.token,
        "devices": devices,
        "state_root": state_root,
        "backoff": FAST_BACKOFF,
        "timing": FAST_TIMING,
        "call_timeout_seconds": 5.0,
        "deadline_seconds": 120.0,
    }
    values.update(overrides)
    return SimulationSettings(**values)  # type: ignore[arg-type]
