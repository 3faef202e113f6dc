"""`ofa_fleet.client` against a real registry and delivery: the same answers as the CLI's,
async and sync, settings resolved as the CLI resolves them."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from ofa_fleet.client import AsyncFleetClient, ClientSettings, FleetClient
from ofa_fleet.errors import RemoteCallError
from ofa_fleet.v1 import registry_pb2
from tests.delivery.world import PROFILE, World
from tests.server_process import OPERATOR_TOKEN


@pytest.fixture
def settings(world: World, monkeypatch: pytest.MonkeyPatch) -> ClientSettings:
    monkeypatch.setenv("OFA_FLEET_REGISTRY", world.registry_address)
    monkeypatch.setenv("OFA_FLEET_DELIVERY", world.delivery_address)
    monkeypatch.setenv("OFA_FLEET_OPERATOR_TOKEN", OPERATOR_TOKEN)
    return ClientSettings.resolve(deadline_seconds=5.0)


def test_settings_come_from_the_environment_unless_given(
    settings: ClientSettings, world: World
) -> None:
    assert (settings.registry, settings.delivery) == (
        world.registry_address,
        world.delivery_address,
    )
    assert settings.token == OPERATOR_TOKEN and not settings.tls.enabled
    assert ClientSettings.resolve(registry="10.0.0.1:1").registry == "10.0.0.1:1"


def test_the_async_client_lists_pages_and_reads_models(
    settings: ClientSettings, world: World
) -> None:
    data = world.add_model(1)

    async def use() -> tuple[list[str], list[str], str, int]:
        async with AsyncFleetClient(settings) as fleet:
            profiles = [p.spec.name async for p in fleet.registry.iter_profiles()]
            devices = [d.id async for d in fleet.registry.iter_devices("pis")]
            models = await fleet.delivery.profile_models(PROFILE)
            fleets = await fleet.registry.list_fleets()
            return profiles, devices, models.current.sha256, len(fleets)

    profiles, devices, sha, fleets = asyncio.run(use())
    assert profiles == [PROFILE] and fleets == 1
    assert sorted(devices) == sorted(d.device.id for d in world.devices)
    assert sha == hashlib.sha256(data).hexdigest()


def test_the_sync_client_does_the_same_without_an_event_loop(
    settings: ClientSettings, world: World
) -> None:
    with FleetClient(settings) as fleet:
        assert [f.name for f in fleet.registry.iter_fleets()] == ["fleets/pis"]
        assert len(fleet.registry.list_devices("pis")) == 2
        request = registry_pb2.UpdateFleetRequest(
            fleet=registry_pb2.Fleet(name="fleets/nope", profile=f"profiles/{PROFILE}")
        )
        with pytest.raises(RemoteCallError) as missing:
            fleet.registry.update_fleet(request)
        assert missing.value.code == "NOT_FOUND" and "'nope'" in str(missing.value)


def test_an_unreachable_service_is_unavailable_after_grpcs_own_retries(
    settings: ClientSettings,
) -> None:
    unreachable = ClientSettings(
        registry="127.0.0.1:1",
        delivery=settings.delivery,
        search=settings.search,
        token=settings.token,
        tls=settings.tls,
        deadline_seconds=5.0,
    )
    with FleetClient(unreachable) as fleet, pytest.raises(RemoteCallError) as down:
        fleet.registry.list_profiles()
    assert down.value.code == "UNAVAILABLE" and "cannot reach the registry" in str(down.value)
