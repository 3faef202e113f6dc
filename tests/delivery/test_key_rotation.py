"""A signing key rotated: retired keys endorse the new one, stored models move onto it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ofa_fleet.contract.signatures import verify_endorsement, verify_manifest
from ofa_fleet.delivery.key_rotation import sign_with_current_key
from ofa_fleet.delivery.signing import MAX_RETIRED_KEYS, ModelSigner
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.errors import IntegrityError, InvalidArgumentError, NotFoundError
from tests.delivery.conftest import manifest_for, model_bytes


def _key(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    ModelSigner.load_or_create(path)
    return path


def test_each_retired_key_endorses_the_current_one_and_nothing_else(tmp_path: Path) -> None:
    old, older, other = (_key(tmp_path, n) for n in ("old.key", "older.key", "other.key"))
    signer = ModelSigner.load_or_create(_key(tmp_path, "new.key"), [old, older])
    retired = [ModelSigner.load_or_create(p) for p in (old, older)]
    assert [e.signer_key_id for e in signer.endorsements] == [r.key_id for r in retired]
    for endorsement, key in zip(signer.endorsements, retired, strict=True):
        verify_endorsement(key.public_key_pem, signer.public_key_pem, endorsement.signature)
        # Not an endorsement of another key, nor by another key.
        with pytest.raises(IntegrityError, match="does not verify"):
            verify_endorsement(
                key.public_key_pem,
                ModelSigner.load_or_create(other).public_key_pem,
                endorsement.signature,
            )
        with pytest.raises(IntegrityError, match="does not verify"):
            verify_endorsement(
                ModelSigner.load_or_create(other).public_key_pem,
                signer.public_key_pem,
                endorsement.signature,
            )
    # An endorsement can never pass for a manifest's signature.
    manifest = manifest_for(b"model")
    with pytest.raises(IntegrityError):
        verify_manifest(retired[0].public_key_pem, manifest, signer.endorsements[0].signature)
    assert ModelSigner.load_or_create(tmp_path / "new.key").endorsements == ()


def test_retired_keys_are_checked_like_the_signing_key(tmp_path: Path) -> None:
    new = _key(tmp_path, "new.key")
    with pytest.raises(InvalidArgumentError, match="also named as a retired key"):
        ModelSigner.load_or_create(new, [new])
    old = _key(tmp_path, "old.key")
    with pytest.raises(InvalidArgumentError, match="named twice"):
        ModelSigner.load_or_create(new, [old, old])
    with pytest.raises(NotFoundError, match="does not exist"):
        ModelSigner.load_or_create(new, [tmp_path / "missing.key"])
    assert not (tmp_path / "missing.key").exists()  # a retired key is never created
    os.chmod(old, 0o644)
    with pytest.raises(InvalidArgumentError, match="chmod 600"):
        ModelSigner.load_or_create(new, [old])
    many = [Ed25519PrivateKey.generate() for _ in range(MAX_RETIRED_KEYS + 1)]
    with pytest.raises(InvalidArgumentError, match=f"at most {MAX_RETIRED_KEYS}"):
        ModelSigner(Ed25519PrivateKey.generate(), many)


def test_models_a_retired_key_signed_are_signed_again_and_others_left(
    store: ModelStore, tmp_path: Path
) -> None:
    old = ModelSigner.load_or_create(tmp_path / "old.key")
    stranger = ModelSigner.load_or_create(tmp_path / "stranger.key")
    new = ModelSigner.load_or_create(tmp_path / "new.key", [tmp_path / "old.key"])
    signed_by = {"old": old, "stranger": stranger, "new": new}
    records = {}
    for seed, (who, signer) in enumerate(signed_by.items()):
        manifest = manifest_for(model_bytes(seed), f"profile-{who}")
        records[who] = store.add(manifest, signer.sign(manifest), model_bytes(seed))

    check = sign_with_current_key(store, new)

    assert (check.current, check.signed_again, check.unknown) == (1, 1, 1)
    after = {who: store.record(r.profile_name, r.sha256) for who, r in records.items()}
    assert new.signed(after["old"].manifest_bytes, after["old"].signature)
    assert after["old"].manifest_bytes == records["old"].manifest_bytes
    # A signature no key here made stays as it is: signing it would vouch for it.
    assert after["stranger"].signature == records["stranger"].signature
    assert after["new"].signature == records["new"].signature
    again = sign_with_current_key(store, new)
    assert (again.current, again.signed_again, again.unknown) == (2, 0, 1)


def test_signing_again_pages_through_every_record(store: ModelStore, tmp_path: Path) -> None:
    old = ModelSigner.load_or_create(tmp_path / "old.key")
    new = ModelSigner.load_or_create(tmp_path / "new.key", [tmp_path / "old.key"])
    for seed in range(7):
        manifest = manifest_for(model_bytes(seed), f"profile-{seed % 3}")
        store.add(manifest, old.sign(manifest), model_bytes(seed))
    changed = store.sign_again(
        lambda data, signature: new.sign_bytes(data) if old.signed(data, signature) else None,
        batch=2,
    )
    assert changed == 7
    page = store.list_models(page_size=100)
    assert len(page.items) == 7
    assert all(new.signed(r.manifest_bytes, r.signature) for r in page.items)
