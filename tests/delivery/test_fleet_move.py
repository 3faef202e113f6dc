"""A fleet moved to another profile: its devices, watching or asking, get that profile's
model without re-enrolling."""

from __future__ import annotations

import dataclasses
import hashlib

from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.v1 import delivery_pb2, registry_pb2
from tests.delivery.world import OPERATOR, World
from tests.registry.conftest import example_profile
from tests.registry.server_thread import bearer


def test_a_moved_fleets_devices_get_the_new_profiles_model(world: World):
    mine = world.add_model(1)
    other = dataclasses.replace(example_profile(), name="x86-gateway")
    world.registry.CreateProfile(
        registry_pb2.CreateProfileRequest(profile=profile_to_proto(other)),
        metadata=OPERATOR,
        timeout=10,
    )
    theirs = world.add_model(2, profile="x86-gateway")
    device = world.devices[0]
    watch = world.delivery.WatchModel(
        delivery_pb2.WatchModelRequest(device=device.device.name),
        metadata=bearer(device.device_token),
        timeout=60,
    )
    assert next(watch).manifest.sha256 == hashlib.sha256(mine).hexdigest()
    moved = world.registry.UpdateFleet(
        registry_pb2.UpdateFleetRequest(
            fleet=registry_pb2.Fleet(name="fleets/pis", profile=f"profiles/{other.name}")
        ),
        metadata=OPERATOR,
        timeout=10,
    ).fleet
    assert moved.profile == "profiles/x86-gateway"
    told = next(watch).manifest  # within delivery's fleet cache and watch poll
    watch.cancel()
    assert (told.sha256, told.profile_name) == (hashlib.sha256(theirs).hexdigest(), other.name)
    manifest, received = world.download(device=1)
    assert received == theirs and manifest.profile_name == other.name
