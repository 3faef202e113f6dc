"""PinFleet over loopback: pin, roll back and unpin a fleet through the registry's policy."""

from __future__ import annotations

import hashlib

import grpc
import pytest

from ofa_fleet.v1 import delivery_pb2, registry_pb2
from tests.delivery.world import OPERATOR, World, enrol
from tests.registry.server_thread import bearer


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pin(world: World, fleet: str = "pis", **fields) -> delivery_pb2.PinFleetResponse:
    request = delivery_pb2.PinFleetRequest(fleet=f"fleets/{fleet}", **fields)
    return world.delivery.PinFleet(request, metadata=OPERATOR, timeout=10)


def pin_error(world: World, metadata=OPERATOR, **fields) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        world.delivery.PinFleet(
            delivery_pb2.PinFleetRequest(**fields), metadata=metadata, timeout=10
        )
    return caught.value


def fleet(world: World, name: str = "pis") -> registry_pb2.Fleet:
    return world.registry.GetFleet(
        registry_pb2.GetFleetRequest(name=f"fleets/{name}"), metadata=OPERATOR, timeout=10
    ).fleet


def test_a_pin_changes_the_fleets_policy_and_watching_devices_get_the_model(world: World):
    older, newer = world.add_model(1), world.add_model(2)
    device = world.devices[0]
    watch = world.delivery.WatchModel(
        delivery_pb2.WatchModelRequest(device=device.device.name),
        metadata=bearer(device.device_token),
        timeout=30,
    )
    assert next(watch).manifest.sha256 == sha(newer)
    answer = pin(world, sha256=sha(older))
    assert answer.sha256 == sha(older) and answer.fleet_revision == 2
    assert next(watch).manifest.sha256 == sha(older)  # at once: the pin woke the watchers
    watch.cancel()
    stored = fleet(world)
    assert stored.rollout.pinned.model_sha256 == sha(older)
    _, received = world.download(device=1)
    assert received == older
    world.add_model(3)  # a newer model does not move a pinned fleet
    _, received = world.download(device=1)
    assert received == older


def test_a_rollback_pins_the_model_before_the_one_the_fleet_runs(world: World):
    first, second = world.add_model(4), world.add_model(5)
    assert pin(world, rollback=True).sha256 == sha(first)
    _, received = world.download()
    assert received == first
    error = pin_error(world, fleet="fleets/pis", rollback=True)  # nothing before the first
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "no earlier model" in error.details()
    assert pin(world, sha256=sha(second)).sha256 == sha(second)
    assert pin(world, rollback=True).sha256 == sha(first)


def test_unpinning_gives_back_the_policy_the_fleet_had(world: World):
    model = world.add_model(6)
    staged = registry_pb2.RolloutPolicy(
        staged=registry_pb2.StagedRollout(
            canary_percent=30, failure_threshold_percent=10, min_success_reports=2
        ),
    )
    enrol(
        world.registry,
        registry_pb2.CreateFleetRequest(
            fleet_id="staged",
            fleet=registry_pb2.Fleet(profile="profiles/raspberry-pi-4", rollout=staged),
        ),
        0,
    )
    assert pin(world, "staged", sha256=sha(model)).fleet_revision == 2
    # A pin over the same pin keeps what the first kept, and changes nothing (revision 2).
    assert pin(world, "staged", sha256=sha(model)).fleet_revision == 2
    answer = pin(world, "staged")
    assert answer.sha256 == "" and answer.fleet_revision == 3
    assert fleet(world, "staged").rollout == staged
    assert pin(world, "pis").fleet_revision == 1  # not pinned: nothing changes


def test_only_a_stored_model_of_the_fleets_profile_can_be_pinned(world: World):
    mine = world.add_model(7)
    other = world.add_model(8, profile="x86-gateway")
    cases = [
        (dict(fleet="fleets/pis", sha256="ab" * 32), grpc.StatusCode.NOT_FOUND, "no model"),
        (dict(fleet="fleets/pis", sha256=sha(other)), grpc.StatusCode.FAILED_PRECONDITION, "x86"),
        (dict(fleet="fleets/nope", sha256=sha(mine)), grpc.StatusCode.NOT_FOUND, "nope"),
        (dict(fleet="fleets/pis", sha256="xyz"), grpc.StatusCode.INVALID_ARGUMENT, "sha256"),
        (
            dict(fleet="fleets/pis", sha256=sha(mine), rollback=True),
            grpc.StatusCode.INVALID_ARGUMENT,
            "not both",
        ),
    ]
    for fields, code, text in cases:
        error = pin_error(world, **fields)
        assert (error.code(), text in error.details()) == (code, True), error.details()
    device = world.devices[0]
    denied = pin_error(world, bearer(device.device_token), fleet="fleets/pis", sha256=sha(mine))
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    assert fleet(world).revision == 1


def test_a_pin_naming_the_fleet_revision_applies_only_at_that_revision(world: World):
    model = world.add_model(7)
    at = fleet(world).revision
    error = pin_error(world, fleet="fleets/pis", sha256=sha(model), expected_fleet_revision=at + 1)
    assert error.code() is grpc.StatusCode.ABORTED and "not the expected" in error.details()
    assert fleet(world).revision == at  # nothing changed
    answer = pin(world, sha256=sha(model), expected_fleet_revision=at)
    assert answer.sha256 == sha(model) and answer.fleet_revision == at + 1
