"""DeliveryService over loopback, with a real registry authenticating the devices."""

from __future__ import annotations

import hashlib
import threading
import time

import grpc
import pytest

from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.contract.signatures import verify_manifest
from ofa_fleet.delivery.serve.access_rules import RULES, SERVICE
from ofa_fleet.v1 import common_pb2, delivery_pb2, registry_pb2
from tests.delivery.conftest import model_bytes
from tests.delivery.world import CHUNK, OPERATOR, PROFILE, World, assemble, enrol
from tests.registry.server_thread import bearer


def test_every_method_has_an_access_rule() -> None:
    methods = delivery_pb2.DESCRIPTOR.services_by_name["DeliveryService"].methods
    assert {f"/{SERVICE}/{m.name}" for m in methods} == set(RULES)


def test_a_device_downloads_its_current_model_signed_in_bounded_chunks(world: World):
    data = world.add_model(1)
    manifest, received, first = assemble(world.get_model())
    assert received == data and first == 0
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert manifest.size_bytes == len(data) and manifest.chunk_size == CHUNK
    key = world.delivery.GetSigningKey(
        delivery_pb2.GetSigningKeyRequest(),
        metadata=bearer(world.devices[0].device_token),
        timeout=10,
    )
    assert key.key_id == manifest.key_id == world.signer.key_id
    signed = Manifest.from_bytes(manifest.canonical_manifest)
    verify_manifest(key.public_key_pem, signed, manifest.signature)
    assert signed.sha256 == manifest.sha256 and signed.arch == manifest.arch


def test_a_device_that_has_the_model_is_told_it_is_up_to_date(world: World):
    data = world.add_model(2)
    responses = world.get_model(have_sha256=hashlib.sha256(data).hexdigest())
    assert len(responses) == 1
    assert responses[0].up_to_date.sha256 == hashlib.sha256(data).hexdigest()


def test_an_interrupted_download_resumes_with_only_the_rest(world: World):
    data = world.add_model(3)
    sha = hashlib.sha256(data).hexdigest()
    half = len(data) // 2
    _, rest, first = assemble(world.get_model(resume_sha256=sha, resume_offset=half))
    assert first == half and rest == data[half:]
    # A resume of another model than the target starts from zero.
    _, whole, first = assemble(world.get_model(resume_sha256="ab" * 32, resume_offset=half))
    assert first == 0 and whole == data
    with pytest.raises(grpc.RpcError) as error:
        world.get_model(resume_sha256=sha, resume_offset=len(data) + 1)
    assert error.value.code() is grpc.StatusCode.OUT_OF_RANGE


def test_a_device_without_a_model_waits_then_is_told_to_retry(world: World):
    with pytest.raises(grpc.RpcError) as error:
        world.get_model(timeout=2)
    assert error.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "retry in" in error.value.details()
    later = threading.Timer(1.0, world.add_model, args=(4,))
    later.start()
    started = time.monotonic()
    manifest, received, _ = assemble(world.get_model(timeout=30))
    later.join()
    assert received == model_bytes(4, 100_000) and time.monotonic() - started >= 0.9
    assert manifest.profile_name == PROFILE


def test_devices_may_only_ask_for_themselves(world: World):
    world.add_model(5)
    mine, other = world.devices
    cases = [
        (bearer(mine.device_token), other.device.id, grpc.StatusCode.PERMISSION_DENIED),
        (OPERATOR, mine.device.id, grpc.StatusCode.PERMISSION_DENIED),
        (bearer("ofa_device_forged"), mine.device.id, grpc.StatusCode.UNAUTHENTICATED),
        ((), mine.device.id, grpc.StatusCode.UNAUTHENTICATED),
    ]
    for metadata, device_id, code in cases:
        request = delivery_pb2.GetModelRequest(device_id=device_id)
        with pytest.raises(grpc.RpcError) as error:
            list(world.delivery.GetModel(request, metadata=metadata, timeout=10))
        assert error.value.code() is code


def test_a_pinned_fleet_gets_its_pinned_model(world: World):
    pinned = world.add_model(6)
    world.add_model(7)  # now the profile's current model
    rollout = registry_pb2.RolloutPolicy(
        strategy=common_pb2.ROLLOUT_STRATEGY_PINNED,
        pinned_model_sha256=hashlib.sha256(pinned).hexdigest(),
    )
    world.devices += enrol(
        world.registry,
        registry_pb2.CreateFleetRequest(name="pinned", profile=PROFILE, rollout=rollout),
        1,
    )
    _, received, _ = assemble(world.get_model(device=2))
    assert received == pinned
    _, latest, _ = assemble(world.get_model(device=0))
    assert latest == model_bytes(7, 100_000)


def test_operators_list_models_and_see_a_profiles_current_model(world: World):
    first = world.add_model(8)
    second = world.add_model(9)
    listing = world.delivery.ListModels(
        delivery_pb2.ListModelsRequest(profile_name=PROFILE, page_size=1),
        metadata=OPERATOR,
        timeout=10,
    )
    assert len(listing.models) == 1 and listing.next_page_token
    shown = world.delivery.GetProfileModels(
        delivery_pb2.GetProfileModelsRequest(profile_name=PROFILE), metadata=OPERATOR, timeout=10
    )
    assert shown.current.sha256 == hashlib.sha256(second).hexdigest()
    assert [h.sha256 for h in shown.history] == [
        hashlib.sha256(d).hexdigest() for d in (second, first)
    ]
    assert shown.history[0].reason == delivery_pb2.MODEL_CHANGE_REASON_MISSING
    assert shown.state == delivery_pb2.SPECIALIZATION_STATE_CURRENT


def test_a_watching_device_hears_of_each_new_current_model(world: World):
    enrolled = world.devices[0]
    stream = world.delivery.WatchModel(
        delivery_pb2.WatchModelRequest(device_id=enrolled.device.id),
        metadata=bearer(enrolled.device_token),
        timeout=60,
    )
    later = threading.Timer(0.5, world.add_model, args=(10,))
    later.start()  # nothing is current when the watch begins
    first = next(stream)
    later.join()
    assert first.manifest.sha256 == hashlib.sha256(model_bytes(10, 100_000)).hexdigest()
    world.add_model(11)  # made current by another writer: seen at the next poll
    second = next(stream)
    assert second.manifest.sha256 == hashlib.sha256(model_bytes(11, 100_000)).hexdigest()
    signed = Manifest.from_bytes(second.manifest.canonical_manifest)
    verify_manifest(world.signer.public_key_pem, signed, second.manifest.signature)
    stream.cancel()
    other = world.devices[1]
    with pytest.raises(grpc.RpcError) as error:
        next(
            world.delivery.WatchModel(
                delivery_pb2.WatchModelRequest(device_id=other.device.id),
                metadata=bearer(enrolled.device_token),
                timeout=10,
            )
        )
    assert error.value.code() is grpc.StatusCode.PERMISSION_DENIED
