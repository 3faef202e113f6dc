"""The agent's parts on their own: backoff, manifest checks, identity, lock, smoke test."""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from grpc import aio

from ofa_fleet.agent.backoff import Backoff, TransientError, pause, retry
from ofa_fleet.agent.connections import Connections, Endpoints
from ofa_fleet.agent.identity import (
    Identity,
    enrolled_identity,
    identity_path,
    load_identity,
    save_identity,
)
from ofa_fleet.agent.manifests import signed_manifest
from ofa_fleet.agent.smoke import Timing, smoke_test
from ofa_fleet.agent.state_lock import state_lock
from ofa_fleet.agent.trust import TrustedKeys, trust
from ofa_fleet.contract.error_details import DETAILS_KEY, ErrorDetails
from ofa_fleet.contract.error_details import encode as encode_details
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.errors import (
    FailedPreconditionError,
    IntegrityError,
    InvalidArgumentError,
    RemoteCallError,
)
from ofa_fleet.v1 import delivery_pb2
from tests.agent.fleet import Fleet
from tests.agent.onnx_models import tiny_onnx
from tests.delivery.conftest import manifest_for

# Backoff.


def test_backoff_grows_exponentially_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(initial_seconds=0.5, cap_seconds=30.0, rng=random.Random(7))
    assert [backoff.step(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    for attempt in range(200):
        delay = backoff.delay(attempt)
        assert backoff.step(attempt) / 2 <= delay <= backoff.step(attempt) <= 30.0
    delays = {round(backoff.delay(10), 6) for _ in range(20)}
    assert len(delays) > 10  # jittered, not lock-step
    with pytest.raises(InvalidArgumentError):
        Backoff(initial_seconds=2, cap_seconds=1)


def test_a_servers_retry_delay_paces_the_retry() -> None:
    asked = ErrorDetails("MODEL_NOT_READY", {}, 7.0)
    paced = aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE,
        aio.Metadata(),
        aio.Metadata((DETAILS_KEY, encode_details(14, "wait", asked))),
        "wait",
    )
    plain = aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, aio.Metadata(), aio.Metadata(), "down")
    backoff = Backoff(rng=random.Random(1))
    waits = [pause(paced, backoff, attempt) for attempt in range(20)]
    assert all(7.0 <= w <= 8.75 for w in waits) and len(set(waits)) > 1  # jittered
    assert all(pause(plain, backoff, 0) <= 0.5 for _ in range(20))  # the agent's own


def test_a_call_the_server_cancelled_is_retried_and_a_refusal_is_not() -> None:
    calls: list[int] = []

    async def cancelled_once() -> str:
        calls.append(1)
        if len(calls) == 1:  # what a server that is stopping, or overloaded, answers
            raise aio.AioRpcError(
                grpc.StatusCode.CANCELLED, aio.Metadata(), aio.Metadata(), "CANCELLED"
            )
        return "done"

    backoff = Backoff(initial_seconds=0.01, cap_seconds=0.02)
    assert asyncio.run(retry(cancelled_once, "test", backoff)) == "done" and len(calls) == 2

    async def refused() -> str:
        raise aio.AioRpcError(
            grpc.StatusCode.PERMISSION_DENIED, aio.Metadata(), aio.Metadata(), "no"
        )

    with pytest.raises(aio.AioRpcError):
        asyncio.run(retry(refused, "test", backoff))


def test_retry_waits_out_transient_failures_and_raises_the_rest() -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("stream cut")
        return "done"

    backoff = Backoff(initial_seconds=0.01, cap_seconds=0.02)
    assert asyncio.run(retry(flaky, "test", backoff)) == "done" and len(calls) == 3

    async def refused() -> str:
        raise IntegrityError("bad signature")

    with pytest.raises(IntegrityError):
        asyncio.run(retry(refused, "test", backoff))


# Manifests as delivery sends them.


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> ModelSigner:
    return ModelSigner.load_or_create(tmp_path_factory.mktemp("key") / "signing.key")


def _message(signer: ModelSigner, **changes: object) -> delivery_pb2.ModelManifest:
    manifest = manifest_for(b"model bytes")
    message = delivery_pb2.ModelManifest(
        canonical_manifest=manifest.canonical_bytes(),
        signature=signer.sign(manifest),
        key_id=signer.key_id,
        sha256=manifest.sha256,
        size_bytes=manifest.size_bytes,
        arch=manifest.arch,
        profile_name=manifest.profile_name,
        profile_revision=manifest.profile_revision,
        supernet_version=manifest.supernet_version,
        chunk_size=4096,
    )
    message.create_time.FromMicroseconds(manifest.created_us)
    for name, value in changes.items():
        setattr(message, name, value)
    return message


def test_a_manifest_is_taken_from_its_signed_bytes(signer: ModelSigner, tmp_path: Path) -> None:
    manifest = signed_manifest(_message(signer), TrustedKeys.of(signer.public_key_pem))
    assert manifest == manifest_for(b"model bytes")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"size_bytes": 5}, "field size_bytes"),
        ({"arch": "r32_k3e3"}, "field arch"),
        ({"sha256": "ab" * 32}, "field sha256"),
        ({"profile_revision": 9}, "field profile_revision"),
        ({"signature": bytes(64)}, "does not verify"),
        ({"canonical_manifest": b"{not json"}, "cannot be read"),
    ],
)
def test_a_manifest_whose_fields_disagree_with_what_was_signed_is_refused(
    signer: ModelSigner, tmp_path: Path, changes: dict[str, object], match: str
) -> None:
    with pytest.raises(IntegrityError, match=match):
        signed_manifest(_message(signer, **changes), TrustedKeys.of(signer.public_key_pem))


def test_a_manifest_altered_and_signed_with_another_key_is_refused(
    signer: ModelSigner, tmp_path: Path
) -> None:
    forger = ModelSigner.load_or_create(tmp_path / "forger.key")
    altered = replace(manifest_for(b"model bytes"), arch="r32_k7e6")
    message = _message(
        signer, canonical_manifest=altered.canonical_bytes(), signature=forger.sign(altered)
    )
    with pytest.raises(IntegrityError, match="does not verify"):
        signed_manifest(message, TrustedKeys.of(signer.public_key_pem))


def test_the_first_key_is_pinned_and_another_refused(signer: ModelSigner, tmp_path: Path) -> None:
    other = ModelSigner.load_or_create(tmp_path / "other.key")
    assert trust(tmp_path, signer.public_key_pem, signer.key_id).key_ids == [signer.key_id]
    assert trust(tmp_path, signer.public_key_pem, signer.key_id).key_ids == [signer.key_id]
    with pytest.raises(IntegrityError, match=f"presents signing key {other.key_id}"):
        trust(tmp_path, other.public_key_pem, other.key_id)
    with pytest.raises(IntegrityError, match="called it"):
        trust(tmp_path / "fresh", other.public_key_pem, signer.key_id)


# Identity and lock.


def test_identity_round_trips_privately_and_damage_is_an_error(tmp_path: Path) -> None:
    identity = Identity("d-" + "0" * 20, "ofa_device_secret", "pis", "pi-1", "2026-01-01T00:00:00Z")
    save_identity(tmp_path, identity)
    assert load_identity(tmp_path) == identity
    assert identity_path(tmp_path).stat().st_mode & 0o777 == 0o600
    assert "secret" not in repr(identity)
    identity_path(tmp_path).write_text("{")
    with pytest.raises(IntegrityError, match="remove it to enrol"):
        load_identity(tmp_path)


def test_an_unenrolled_device_without_a_fleet_token_says_what_to_give(tmp_path: Path) -> None:
    async def enrol() -> None:
        connections = Connections(Endpoints("127.0.0.1:1", "127.0.0.1:1"))
        try:
            await enrolled_identity(tmp_path, connections, None, None, Backoff())
        finally:
            await connections.close()

    with pytest.raises(FailedPreconditionError, match="--fleet-token"):
        asyncio.run(enrol())


def test_a_refused_enrolment_token_is_one_clear_error(tmp_path: Path) -> None:
    """A refusal is not retried: only UNAVAILABLE, DEADLINE_EXCEEDED and CANCELLED are."""

    async def enrol() -> None:
        server = aio.server()
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()  # serves nothing: every call is UNIMPLEMENTED
        connections = Connections(Endpoints(f"127.0.0.1:{port}", f"127.0.0.1:{port}"))
        try:
            await enrolled_identity(tmp_path, connections, "ofa_enrol_x", "pi", Backoff())
        finally:
            await connections.close()
            await server.stop(None)

    with pytest.raises(RemoteCallError, match=r"enrolment refused: .*\(UNIMPLEMENTED\)"):
        asyncio.run(enrol())
    assert not identity_path(tmp_path).exists()


def test_an_enrolment_whose_answer_is_lost_is_retried_as_the_same_device(
    fleet_without_delivery: Fleet, tmp_path: Path
) -> None:
    """The registry enrols the device, but its answer never arrives (the call times out on
    the device's side): the retry, with the same request id, is the same device."""
    fleet = fleet_without_delivery

    async def enrol() -> Identity:
        connections = Connections(Endpoints(fleet.registry.address, fleet.registry.address))
        lost: list[object] = []

        async def answer_lost(method, request, token):  # type: ignore[no-untyped-def]
            answer = await Connections.call_registry(connections, method, request, token)
            if not lost:
                lost.append(answer)
                raise TransientError("registry RegisterDevice: deadline exceeded (lost)")
            return answer

        connections.call_registry = answer_lost  # type: ignore[method-assign]
        try:
            identity, new = await enrolled_identity(
                tmp_path, connections, fleet.token, "pi-7", Backoff(initial_seconds=0.01)
            )
        finally:
            await connections.close()
        assert new and lost
        return identity

    identity = asyncio.run(enrol())
    assert [d.id for d in fleet.devices()] == [identity.device_id]  # one device, not two
    assert fleet.device(identity.device_id).hardware_id == "pi-7"


def test_the_state_lock_names_its_holder_and_is_released(tmp_path: Path) -> None:
    with (
        state_lock(tmp_path),
        pytest.raises(
            FailedPreconditionError, match=rf"in use by another agent \(pid {os.getpid()}\)"
        ),
    ):
        state_lock(tmp_path).acquire()
    with state_lock(tmp_path):
        pass


# Smoke test.


def test_the_smoke_test_feeds_the_graphs_shape_and_times_the_model(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(tiny_onnx(1))
    result = smoke_test(path, threads=1, timing=Timing(warmup=1, runs=7, max_seconds=5))
    assert result.input_shape == (1, 3, 16, 16)
    assert result.runs == 7 and result.latency_ms > 0


def test_a_model_that_is_not_onnx_fails_the_smoke_test(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(FailedPreconditionError, match="does not load in onnxruntime"):
        smoke_test(path)
