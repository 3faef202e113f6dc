"""The keys a device trusts: pinned on first use, then only keys a trusted key endorsed."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from ofa_fleet.agent.trust import (
    MAX_TRUSTED_KEYS,
    Endorsement,
    TrustedKeys,
    endorsed_dir,
    load_trusted,
    trust,
)
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.errors import IntegrityError
from tests.delivery.conftest import manifest_for


def _keys(tmp_path: Path, *names: str) -> list[Path]:
    paths = [tmp_path / "keys" / f"{name}.key" for name in names]
    for path in paths:
        ModelSigner.load_or_create(path)
    return paths


def _served(signer: ModelSigner) -> tuple[bytes, str, list[Endorsement]]:
    endorsements = [Endorsement(e.signer_key_id, e.signature) for e in signer.endorsements]
    return signer.public_key_pem, signer.key_id, endorsements


def test_a_key_endorsed_by_a_trusted_one_is_trusted_from_then_on(tmp_path: Path) -> None:
    a, b, c = _keys(tmp_path, "a", "b", "c")
    state = tmp_path / "device"
    state.mkdir()
    first = ModelSigner.load_or_create(a)
    trust(state, *_served(first))
    rotated = ModelSigner.load_or_create(b, [a])
    keys = trust(state, *_served(rotated))
    assert keys.key_ids == [first.key_id, rotated.key_id]
    assert (endorsed_dir(state) / f"{rotated.key_id}.pem").read_bytes() == rotated.public_key_pem
    loaded = load_trusted(state)
    assert loaded is not None and loaded.key_ids == keys.key_ids
    # A second rotation needs only the key before it: b endorses c.
    again = ModelSigner.load_or_create(c, [b])
    assert trust(state, *_served(again)).key_ids[-1] == again.key_id
    # Models signed by any of them verify, the first key's included.
    manifest = manifest_for(b"model")
    loaded = load_trusted(state)
    assert loaded is not None
    for signer in (first, rotated, again):
        loaded.verify(manifest, signer.sign(manifest))


def test_a_device_that_missed_rotations_follows_the_oldest_endorsement(tmp_path: Path) -> None:
    a, b, c = _keys(tmp_path, "a", "b", "c")
    state = tmp_path / "device"
    state.mkdir()
    trust(state, *_served(ModelSigner.load_or_create(a)))
    latest = ModelSigner.load_or_create(c, [b, a])
    assert trust(state, *_served(latest)).key_ids[-1] == latest.key_id


def test_keys_nobody_trusted_endorsed_are_refused(tmp_path: Path) -> None:
    a, b, c = _keys(tmp_path, "a", "b", "c")
    state = tmp_path / "device"
    state.mkdir()
    pinned = ModelSigner.load_or_create(a)
    trust(state, *_served(pinned))
    # Endorsed, but by a key this device never trusted.
    stranger = ModelSigner.load_or_create(c, [b])
    with pytest.raises(
        IntegrityError, match=f"endorsed by {stranger.endorsements[0].signer_key_id}"
    ):
        trust(state, *_served(stranger))
    # Not endorsed at all.
    with pytest.raises(IntegrityError, match="endorsed by no key"):
        trust(state, stranger.public_key_pem, stranger.key_id, [])
    # Claiming the trusted key's id with a signature it did not make.
    pem, key_id, _ = _served(stranger)
    forged = [Endorsement(pinned.key_id, bytes(64))]
    with pytest.raises(IntegrityError, match="does not verify"):
        trust(state, pem, key_id, forged)
    # Over another key: a's real endorsement of b does not vouch for c.
    real = ModelSigner.load_or_create(b, [a]).endorsements[0]
    with pytest.raises(IntegrityError, match="does not verify"):
        trust(state, pem, key_id, [Endorsement(real.signer_key_id, real.signature)])
    assert not endorsed_dir(state).exists()
    loaded = load_trusted(state)
    assert loaded is not None and loaded.key_ids == [pinned.key_id]


def test_a_device_keeps_a_bounded_number_of_keys(tmp_path: Path) -> None:
    paths = _keys(tmp_path, *(f"k{i}" for i in range(MAX_TRUSTED_KEYS + 1)))
    state = tmp_path / "device"
    state.mkdir()
    trust(state, *_served(ModelSigner.load_or_create(paths[0])))
    for before, after in itertools.pairwise(paths[:-1]):
        trust(state, *_served(ModelSigner.load_or_create(after, [before])))
    loaded = load_trusted(state)
    assert loaded is not None and len(loaded.keys) == MAX_TRUSTED_KEYS
    with pytest.raises(IntegrityError, match=f"already trusts {MAX_TRUSTED_KEYS} keys"):
        trust(state, *_served(ModelSigner.load_or_create(paths[-1], [paths[-2]])))


def test_a_manifest_verifies_only_with_a_trusted_key(tmp_path: Path) -> None:
    a, b = _keys(tmp_path, "a", "b")
    trusted, other = ModelSigner.load_or_create(a), ModelSigner.load_or_create(b)
    keys = TrustedKeys.of(trusted.public_key_pem)
    manifest = manifest_for(b"model")
    # The id a message names is not signed: a wrong one costs a try, not a refusal.
    keys.verify(manifest, trusted.sign(manifest), claimed_key_id=other.key_id)
    with pytest.raises(IntegrityError, match=f"any key this device trusts \\({trusted.key_id}"):
        keys.verify(manifest, other.sign(manifest), claimed_key_id=other.key_id)
