"""The signing key rotated as deploy/README.md says, with real delivery processes: devices
enrolled before it follow the endorsement, devices enrolled after it trust the new key
alone and still verify every stored model, and a key replaced without one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ofa_fleet.agent.install import ModelDirectory
from ofa_fleet.agent.trust import load_trusted
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.errors import IntegrityError
from tests.agent.fleet import PROFILE, Fleet
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration


def _delivery(fleet: Fleet, tmp_path: Path, key: Path, *retired: Path) -> ServerProcess:
    """`ofa-fleet serve delivery` on the fleet's store, signing with `key`."""
    args = [
        *("--registry", fleet.registry.address),
        *("--db", f"sqlite:///{tmp_path / 'delivery.db'}"),
        *("--blobs", str(tmp_path / "blobs")),
        *("--signing-key", str(key)),
    ]
    for path in retired:
        args += ["--retired-signing-key", str(path)]
    return ServerProcess("delivery", *args)


def _trusted_ids(state: Path) -> list[str]:
    keys = load_trusted(state)
    assert keys is not None
    return keys.key_ids


def test_a_rotated_key_reaches_devices_and_every_stored_model_moves_onto_it(
    fleet_without_delivery: Fleet, model_a: bytes, model_b: bytes, tmp_path: Path
) -> None:
    fleet = fleet_without_delivery
    old_key, new_key = fleet.key_path, tmp_path / "new.key"
    old, new = fleet.signer, ModelSigner.load_or_create(new_key)
    first = fleet.publish(model_a)  # signed by the old key
    early, late = tmp_path / "early-device", tmp_path / "late-device"

    with _delivery(fleet, tmp_path, old_key) as delivery:
        assert fleet.boot(early, delivery=delivery.address).boot.model_sha256 == first
    assert _trusted_ids(early) == [old.key_id]

    with _delivery(fleet, tmp_path, new_key, old_key) as delivery:
        record = fleet.store.record(PROFILE, first)
        assert new.signed(record.manifest_bytes, record.signature)
        assert "signed again with the current key" in delivery.log
        # Before the rotation: follows the old key's endorsement, keeps its model.
        again = fleet.boot(early, delivery=delivery.address).boot
        assert again.model_sha256 == first and again.up_to_date
        assert _trusted_ids(early) == [old.key_id, new.key_id]
        # After it: pins the new key, and the model specialized before it verifies.
        assert fleet.boot(late, delivery=delivery.address).boot.model_sha256 == first
        assert _trusted_ids(late) == [new.key_id]
    # A model signed after the rotation (a restart, so no replica serves a cached target).
    second = fleet.publish(model_b, signer=new, seed=1)
    with _delivery(fleet, tmp_path, new_key, old_key) as delivery:
        for state in (early, late):
            assert fleet.boot(state, delivery=delivery.address).boot.model_sha256 == second

    # A third key with no retired one: a replacement, which no device can tell from an
    # impostor. Both refuse it and keep running what they verified.
    with _delivery(fleet, tmp_path, tmp_path / "replaced.key") as delivery:
        for state in (early, late):
            with pytest.raises(IntegrityError, match="endorsed by no key") as refused:
                fleet.boot(state, delivery=delivery.address)
            assert f"still running model {second}" in str(refused.value)
            installed = ModelDirectory(state).installed()
            assert installed is not None and installed.manifest.sha256 == second
