"""The demo's registry content against a real registry: kept, updated, or made again."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ofa_fleet.errors import RemoteCallError
from ofa_fleet.hardware.profile_proto import budget_ms
from ofa_fleet.serving.client import open_aio_channel, remote_errors
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.stack.demo_fleets import DemoFleet, ensure_demo_fleets
from ofa_fleet.stack.secrets_file import save_secrets
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.registry.conftest import example_profile
from tests.registry.server_thread import OPERATOR_TOKEN, RegistryServerThread, bearer
from tests.registry.test_latency_tables import measured, submit

PROFILES = Path(__file__).resolve().parents[2] / "deploy" / "profiles"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServerThread]:
    with RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as server:
        yield server


def ensure(registry: RegistryServerThread, files: list[Path], workdir: Path) -> list[DemoFleet]:
    async def run() -> list[DemoFleet]:
        channel = open_aio_channel(registry.address)
        try:
            client = RegistryClient(
                RegistryServiceStub(channel),
                OPERATOR_TOKEN,
                errors=remote_errors("registry", registry.address),
            )
            return await ensure_demo_fleets(
                client, files, workdir / "fleet-tokens.json", workdir / "devices"
            )
        finally:
            await channel.close(None)

    return asyncio.run(run())


def test_a_second_run_keeps_profiles_fleets_and_tokens(
    registry: RegistryServerThread, tmp_path: Path
) -> None:
    files = sorted(PROFILES.glob("*.yaml"))
    first = ensure(registry, files, tmp_path)
    tokens = (tmp_path / "fleet-tokens.json").read_text()
    second = ensure(registry, files, tmp_path)
    assert [f.name for f in first] == [f"demo-{p.stem}" for p in files]
    assert [(f.name, f.profile.revision, f.enrolment_token) for f in second] == [
        (f.name, f.profile.revision, f.enrolment_token) for f in first
    ]
    assert (tmp_path / "fleet-tokens.json").read_text() == tokens


def test_a_table_the_profiles_devices_measured_is_kept_by_a_second_run(
    registry: RegistryServerThread, tmp_path: Path
) -> None:
    spec = dataclasses.replace(example_profile(), measure_on_devices=True)
    path = tmp_path / f"{spec.name}.json"
    path.write_text(json.dumps(spec.to_dict()))
    (fleet,) = ensure(registry, [path], tmp_path)
    with grpc.insecure_channel(registry.address) as channel:
        stub = RegistryServiceStub(channel)
        device = stub.RegisterDevice(
            pb.RegisterDeviceRequest(hardware_id="d-0"),
            metadata=bearer(fleet.enrolment_token),
            timeout=10,
        )
        submit(stub, device, measured())
    (again,) = ensure(registry, [path], tmp_path)
    assert again.profile.revision == fleet.profile.revision + 1  # the table's, no more
    assert again.profile.spec.latency_table_json


def test_a_changed_profile_file_updates_the_stored_profile(
    registry: RegistryServerThread, tmp_path: Path
) -> None:
    original = PROFILES / "raspberry-pi-4.yaml"
    (before,) = ensure(registry, [original], tmp_path)
    changed = tmp_path / "raspberry-pi-4.yaml"
    shutil.copy(original, changed)
    budget = budget_ms(before.profile.spec.constraints)
    text, replaced = re.subn(
        r"latency_budget_ms: [0-9.]+", f"latency_budget_ms: {budget * 2}", changed.read_text()
    )
    assert replaced == 1
    changed.write_text(text)
    (after,) = ensure(registry, [changed], tmp_path)
    assert after.profile.revision == before.profile.revision + 1
    assert budget_ms(after.profile.spec.constraints) == budget * 2
    assert after.enrolment_token == before.enrolment_token


def test_a_lost_token_makes_the_fleet_again_without_its_old_devices(
    registry: RegistryServerThread, tmp_path: Path
) -> None:
    (fleet,) = ensure(registry, [PROFILES / "raspberry-pi-4.yaml"], tmp_path)
    with registry.channel() as channel:
        stub = RegistryServiceStub(channel)
        stub.RegisterDevice(
            pb.RegisterDeviceRequest(hardware_id="sn-1"),
            metadata=bearer(fleet.enrolment_token),
            timeout=10,
        )
        device_dir = tmp_path / "devices" / fleet.name
        device_dir.mkdir(parents=True)
        save_secrets(tmp_path / "fleet-tokens.json", {})  # the token is lost

        (again,) = ensure(registry, [PROFILES / "raspberry-pi-4.yaml"], tmp_path)

        assert again.enrolment_token != fleet.enrolment_token
        assert not device_dir.exists()
        listed = stub.ListDevices(
            pb.ListDevicesRequest(parent=f"fleets/{fleet.name}"),
            metadata=bearer(OPERATOR_TOKEN),
            timeout=10,
        )
        assert list(listed.devices) == []


def test_a_registry_error_reaches_the_caller_with_its_status(tmp_path: Path) -> None:
    with (
        RegistryServerThread(
            f"sqlite:///{tmp_path / 'registry.db'}", operator_token="f" * 64
        ) as registry,
        pytest.raises(RemoteCallError) as caught,
    ):
        ensure(registry, [PROFILES / "raspberry-pi-4.yaml"], tmp_path)
    assert caught.value.code == "UNAUTHENTICATED"
    assert registry.address in str(caught.value)
