"""DeliveryService over loopback, with a real registry authenticating the devices."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

import grpc
import pytest

from ofa_fleet.contract.error_details import MODEL_NOT_READY
from ofa_fleet.contract.error_details import decode as decode_details
from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.contract.signatures import verify_manifest
from ofa_fleet.delivery.fleets.targets import TARGET_TTL_SECONDS
from ofa_fleet.delivery.serve.access_rules import RULES, SERVICE
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.specializations import BackoffPolicy, Specializations
from ofa_fleet.v1 import delivery_pb2, registry_pb2
from tests.delivery.conftest import model_bytes, open_database
from tests.delivery.world import CHUNK, OPERATOR, PROFILE, World, enrol
from tests.registry.server_thread import bearer


def test_every_method_has_an_access_rule() -> None:
    methods = delivery_pb2.DESCRIPTOR.services_by_name["DeliveryService"].methods
    assert {f"/{SERVICE}/{m.name}" for m in methods} == set(RULES)


def test_a_device_downloads_its_current_model_signed_in_bounded_chunks(world: World):
    data = world.add_model(1)
    manifest, received = world.download()  # chunks within CHUNK, in order, from 0
    assert received == data
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert manifest.name == f"profiles/{PROFILE}/models/{manifest.sha256}"
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
    answer = world.get_manifest(have_sha256=hashlib.sha256(data).hexdigest())
    assert answer.WhichOneof("answer") == "up_to_date"
    assert answer.up_to_date.sha256 == hashlib.sha256(data).hexdigest()
    other = world.get_manifest(have_sha256="ab" * 32)  # runs another model: gets the manifest
    assert other.WhichOneof("answer") == "manifest"
    with pytest.raises(grpc.RpcError) as error:
        world.get_manifest(have_sha256="x" * 1_000_000)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "have_sha256" in error.value.details()


def test_a_change_here_is_served_at_once_and_another_replicas_within_the_cache_bound(
    world: World,
) -> None:
    first = hashlib.sha256(world.add_model(21)).hexdigest()
    second = hashlib.sha256(world.add_model(22, current=False)).hexdigest()
    assert world.get_manifest().manifest.sha256 == first  # the fleet's target is cached now
    # Another replica (its own connections to the same database) makes `second` current:
    # this replica sees it once its cached target expires.
    other = open_database(world.store.database.url.url.render_as_string(hide_password=False))
    try:
        ModelStore(other, world.store.blobs).set_current(PROFILE, second, "missing")
    finally:
        other.close()
    deadline = time.monotonic() + 5 * TARGET_TTL_SECONDS + 5
    while world.get_manifest().manifest.sha256 != second:
        assert time.monotonic() < deadline, "another replica's change was never seen"
        time.sleep(0.05)
    # A change this replica commits is served by the very next call.
    world.store.set_current(PROFILE, first, "missing")
    assert world.get_manifest().manifest.sha256 == first


def test_a_model_is_read_from_any_offset_and_within_a_limit(world: World):
    data = world.add_model(3)
    sha = hashlib.sha256(data).hexdigest()
    half = len(data) // 2
    assert world.read_model(sha, offset=half) == (data[half:], half)
    assert world.read_model(sha, offset=10, limit=CHUNK + 5) == (data[10 : CHUNK + 15], 10)
    assert world.read_model(sha, offset=len(data)) == (b"", -1)  # a resume with every byte
    cases = [
        (dict(sha256=sha, read_offset=len(data) + 1), grpc.StatusCode.OUT_OF_RANGE, "past the end"),
        (dict(sha256="cd" * 32), grpc.StatusCode.NOT_FOUND, "no model"),
        (dict(sha256="not-a-digest"), grpc.StatusCode.INVALID_ARGUMENT, "sha256"),
    ]
    for fields, code, words in cases:
        with pytest.raises(grpc.RpcError) as error:
            list(
                world.delivery.ReadModel(
                    delivery_pb2.ReadModelRequest(**fields),
                    metadata=bearer(world.devices[0].device_token),
                    timeout=10,
                )
            )
        assert error.value.code() is code and words in error.value.details()


def test_a_device_without_a_model_is_told_at_once_to_retry_after_a_delay(world: World):
    with pytest.raises(grpc.RpcError) as error:
        world.get_manifest(timeout=60)  # not held until the deadline: answered now
    assert error.value.code() is grpc.StatusCode.UNAVAILABLE
    details = decode_details(error.value.trailing_metadata())
    assert details is not None and details.reason == MODEL_NOT_READY
    assert details.retry_after_seconds == 5 and details.facts["fleet"] == "pis"
    # A profile whose specialization fails: the device is told why, and to wait longer.
    Specializations(world.store.database).mark_failing(
        PROFILE, "the fastest subnet needs 9.161 ms, the budget is 0.05 ms", BackoffPolicy()
    )
    with pytest.raises(grpc.RpcError) as error:
        world.get_manifest(timeout=60)
    assert error.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "the budget is 0.05 ms" in error.value.details()
    details = decode_details(error.value.trailing_metadata())
    assert details is not None and details.retry_after_seconds == 60
    assert details.facts["profile"] == PROFILE and "9.161 ms" in details.facts["last_error"]
    world.add_model(4)
    manifest, received = world.download()
    assert received == model_bytes(4, 100_000) and manifest.profile_name == PROFILE


def test_devices_may_only_ask_for_their_own_manifest_but_read_any_model(world: World):
    data = world.add_model(5)
    mine, other = world.devices
    cases = [
        (bearer(mine.device_token), other.device.name, grpc.StatusCode.PERMISSION_DENIED),
        # Its own id in another fleet's name is not its own device either.
        (
            bearer(mine.device_token),
            f"fleets/elsewhere/devices/{mine.device.id}",
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (OPERATOR, mine.device.name, grpc.StatusCode.PERMISSION_DENIED),
        (bearer("ofa_device_forged"), mine.device.name, grpc.StatusCode.UNAUTHENTICATED),
        ((), mine.device.name, grpc.StatusCode.UNAUTHENTICATED),
        # A kind of token delivery never takes: the wrong key, whether or not it is valid.
        (bearer("ofa_enrol_anything"), mine.device.name, grpc.StatusCode.PERMISSION_DENIED),
    ]
    for metadata, device, code in cases:
        request = delivery_pb2.GetModelManifestRequest(device=device)
        with pytest.raises(grpc.RpcError) as error:
            world.delivery.GetModelManifest(request, metadata=metadata, timeout=10)
        assert error.value.code() is code
    # The bytes are content-addressed: any enrolled device, or an operator, reads them.
    read = delivery_pb2.ReadModelRequest(sha256=hashlib.sha256(data).hexdigest())
    for metadata in (bearer(other.device_token), OPERATOR):
        stream = world.delivery.ReadModel(read, metadata=metadata, timeout=10)
        assert b"".join(r.chunk.data for r in stream) == data
    for metadata in ((), bearer("ofa_device_forged")):
        with pytest.raises(grpc.RpcError) as error:
            list(world.delivery.ReadModel(read, metadata=metadata, timeout=10))
        assert error.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_a_pinned_fleet_gets_its_pinned_model(world: World):
    pinned = world.add_model(6)
    world.add_model(7)  # now the profile's current model
    rollout = registry_pb2.RolloutPolicy(
        pinned=registry_pb2.PinnedRollout(model_sha256=hashlib.sha256(pinned).hexdigest()),
    )
    world.devices += enrol(
        world.registry,
        registry_pb2.CreateFleetRequest(
            fleet_id="pinned",
            fleet=registry_pb2.Fleet(profile=f"profiles/{PROFILE}", rollout=rollout),
        ),
        1,
    )
    _, received = world.download(device=2)
    assert received == pinned
    _, latest = world.download(device=0)
    assert latest == model_bytes(7, 100_000)


def test_operators_list_models_and_see_a_profiles_current_model(world: World):
    first = world.add_model(8)
    second = world.add_model(9)
    listing = world.delivery.ListModels(
        delivery_pb2.ListModelsRequest(parent=f"profiles/{PROFILE}", page_size=1),
        metadata=OPERATOR,
        timeout=10,
    )
    assert len(listing.models) == 1 and listing.next_page_token
    shown = world.delivery.GetProfileModels(
        delivery_pb2.GetProfileModelsRequest(name=f"profiles/{PROFILE}"),
        metadata=OPERATOR,
        timeout=10,
    )
    assert shown.current.sha256 == hashlib.sha256(second).hexdigest()
    assert [h.sha256 for h in shown.history] == [
        hashlib.sha256(d).hexdigest() for d in (second, first)
    ]
    assert shown.history[0].reason == delivery_pb2.MODEL_CHANGE_REASON_MISSING
    assert shown.state == delivery_pb2.SPECIALIZATION_STATE_CURRENT
    assert not shown.next_history_page_token
    pages, token = [], ""
    while True:  # the history a page of one at a time, newest first
        page = world.delivery.GetProfileModels(
            delivery_pb2.GetProfileModelsRequest(
                name=f"profiles/{PROFILE}", history_page_size=1, history_page_token=token
            ),
            metadata=OPERATOR,
            timeout=10,
        )
        pages.append([h.sha256 for h in page.history])
        token = page.next_history_page_token
        if not token:
            break
    assert pages == [[h.sha256] for h in shown.history]
    for request in (
        delivery_pb2.GetProfileModelsRequest(name=f"profiles/{PROFILE}", history_page_size=-1),
        delivery_pb2.GetProfileModelsRequest(
            name=f"profiles/{PROFILE}", history_page_token="bogus"
        ),
        delivery_pb2.ListModelsRequest(parent="profiles/-", page_size=-5),
    ):
        call = (
            world.delivery.ListModels
            if isinstance(request, delivery_pb2.ListModelsRequest)
            else world.delivery.GetProfileModels
        )
        with pytest.raises(grpc.RpcError) as error:
            call(request, metadata=OPERATOR, timeout=10)
        assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_a_watching_device_hears_of_each_new_current_model(world: World):
    enrolled = world.devices[0]
    stream = world.delivery.WatchModel(
        delivery_pb2.WatchModelRequest(device=enrolled.device.name),
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
                delivery_pb2.WatchModelRequest(device=other.device.name),
                metadata=bearer(enrolled.device_token),
                timeout=10,
            )
        )
    assert error.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_watches_that_devices_cancel_are_logged_and_the_server_serves_on(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Their line is at INFO (CANCELLED is no success) and is written after the client has
    # gone, with the peer read while the call was alive.
    world.add_model(23)
    enrolled = world.devices[0]
    with caplog.at_level(logging.INFO, logger="ofa_fleet.access"):
        for _ in range(20):
            stream = world.delivery.WatchModel(
                delivery_pb2.WatchModelRequest(device=enrolled.device.name),
                metadata=bearer(enrolled.device_token),
                timeout=30,
            )
            next(stream)
            stream.cancel()
        deadline = time.monotonic() + 10
        while len(_watch_lines(caplog, "CANCELLED")) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(_watch_lines(caplog, "CANCELLED")) == 20
    assert all(r.peer.startswith("ipv") for r in _watch_lines(caplog, "CANCELLED"))
    assert world.get_manifest().manifest.sha256  # still serving


def _watch_lines(caplog: pytest.LogCaptureFixture, code: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.getMessage() == "call" and r.method.endswith("/WatchModel") and r.code == code
    ]
