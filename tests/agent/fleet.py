"""A real registry and a real delivery on loopback, a fleet, and agents to boot against them.

Servers run in background threads (`tests/registry/server_thread.py`,
`tests/delivery/server_thread.py`); the agent runs in the test's own thread, or in a
process for the CLI tests, and talks to them over real sockets as a device would.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

from ofa_fleet.agent.backoff import Backoff
from ofa_fleet.agent.boot import BootSettings
from ofa_fleet.agent.connections import Endpoints
from ofa_fleet.agent.download import ChunkHook, DownloadTimeouts
from ofa_fleet.agent.runner import Agent, AgentConfig, AgentResult
from ofa_fleet.agent.smoke import Timing
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc
from tests.delivery.conftest import manifest_for
from tests.registry.conftest import example_profile
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.server_process import OPERATOR_TOKEN

PROFILE = "raspberry-pi-4"
FLEET = "pis"
CHUNK = 4096
FAST_BACKOFF = Backoff(initial_seconds=0.05, cap_seconds=0.4)
FAST_TIMING = Timing(warmup=1, runs=5, min_runs=3, max_seconds=0.2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Fleet:
    """One fleet of one profile in a running registry, with delivery's store and key."""

    def __init__(
        self, registry: RegistryServerThread, store: ModelStore, key_path: Path, root: Path
    ) -> None:
        self.registry = registry
        self.store = store
        self.key_path = key_path
        self.signer = ModelSigner.load_or_create(key_path)
        self.root = root
        self.channel = registry.channel()
        self.stub = registry_pb2_grpc.RegistryServiceStub(self.channel)
        self.stub.CreateProfile(
            registry_pb2.CreateProfileRequest(profile=profile_to_proto(example_profile(PROFILE))),
            metadata=bearer(OPERATOR_TOKEN),
            timeout=10,
        )
        created = self.stub.CreateFleet(
            registry_pb2.CreateFleetRequest(
                fleet_id=FLEET, fleet=registry_pb2.Fleet(profile=f"profiles/{PROFILE}")
            ),
            metadata=bearer(OPERATOR_TOKEN),
            timeout=10,
        )
        self.token = created.enrolment_token
        self.delivery_address = ""

    def publish(self, data: bytes, signer: ModelSigner | None = None, seed: int = 0) -> str:
        """Store `data` as the profile's current model, signed (by delivery's key unless
        `signer` says otherwise); returns its sha256."""
        manifest = replace(manifest_for(data, PROFILE), created_us=1_700_000_000_000_000 + seed)
        self.store.add(manifest, (signer or self.signer).sign(manifest), data)
        self.store.set_current(PROFILE, manifest.sha256, "missing")
        return manifest.sha256

    def config(self, state: Path, **overrides: Any) -> AgentConfig:
        boot = BootSettings(
            backoff=FAST_BACKOFF,
            download=DownloadTimeouts(
                call_seconds=overrides.pop("download_seconds", 10.0), stall_seconds=5.0
            ),
            timing=FAST_TIMING,
            wait_while_infeasible=overrides.pop("wait_while_infeasible", True),
        )
        values: dict[str, Any] = {
            "state_dir": state,
            "endpoints": Endpoints(
                registry=self.registry.address,
                delivery=overrides.pop("delivery", self.delivery_address),
                call_timeout_seconds=5.0,
            ),
            "fleet_token": self.token,
            "hardware_id": "test-device",
            "boot": boot,
        }
        values.update(overrides)
        return AgentConfig(**values)

    def boot(self, state: Path, on_chunk: ChunkHook | None = None, **overrides: Any) -> AgentResult:
        """`ofa-fleet device run --once`, in this thread."""
        agent = Agent(self.config(state, **overrides), on_chunk=on_chunk)
        return asyncio.run(agent.run(once=True))

    def device(self, device_id: str) -> registry_pb2.Device:
        answer = self.stub.GetDevice(
            registry_pb2.GetDeviceRequest(name=f"fleets/{FLEET}/devices/{device_id}"),
            metadata=bearer(OPERATOR_TOKEN),
            timeout=10,
        )
        return answer.device

    def devices(self) -> list[registry_pb2.Device]:
        answer = self.stub.ListDevices(
            registry_pb2.ListDevicesRequest(parent=f"fleets/{FLEET}"),
            metadata=bearer(OPERATOR_TOKEN),
            timeout=10,
        )
        return list(answer.devices)

    def close(self) -> None:
        self.channel.close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
