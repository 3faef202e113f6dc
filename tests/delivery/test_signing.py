"""Model signing: round trip, every way a check must fail, and the shared key file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.contract.signatures import public_key_id, verify_manifest
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.errors import (
    FailedPreconditionError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
)


def _manifest(**changes: object) -> Manifest:
    fields: dict[str, object] = {
        "sha256": "ab" * 32,
        "size_bytes": 1234,
        "profile_name": "raspberry-pi-4",
        "profile_revision": 3,
        "supernet_version": "0123456789abcdef",
        "arch": "r32_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3",
        "created_us": 1_700_000_000_000_000,
        "figures": {"latency_ms": 4.5, "top1": 0.91},
    }
    fields.update(changes)
    return Manifest(**fields)  # type: ignore[arg-type]


@pytest.fixture
def signer(tmp_path: Path) -> ModelSigner:
    return ModelSigner.load_or_create(tmp_path / "signing.pem")


def test_a_signature_verifies_with_the_public_key(signer: ModelSigner) -> None:
    manifest = _manifest()
    signature = signer.sign(manifest)
    assert len(signature) == 64
    verify_manifest(signer.public_key_pem, manifest, signature)
    # A manifest that went through its own JSON form is the same manifest.
    verify_manifest(
        signer.public_key_pem, Manifest.from_bytes(manifest.canonical_bytes()), signature
    )


@pytest.mark.parametrize(
    "change",
    [
        {"sha256": "cd" * 32},
        {"size_bytes": 1235},
        {"arch": "r24_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3"},
        {"profile_revision": 4},
        {"figures": {"latency_ms": 4.5, "top1": 0.92}},
    ],
)
def test_a_changed_manifest_fails(signer: ModelSigner, change: dict[str, object]) -> None:
    signature = signer.sign(_manifest())
    tampered = dataclasses.replace(_manifest(), **change)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError, match="signature does not verify") as caught:
        verify_manifest(signer.public_key_pem, tampered, signature)
    assert tampered.sha256 in str(caught.value)
    assert signer.key_id in str(caught.value)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_a_damaged_signature_fails(signer: ModelSigner, damage: str) -> None:
    manifest = _manifest()
    signature = signer.sign(manifest)
    damaged = {
        "flip": bytes([signature[0] ^ 1]) + signature[1:],
        "truncate": signature[:-1],
        "empty": b"",
    }[damage]
    with pytest.raises(IntegrityError, match="signature does not verify"):
        verify_manifest(signer.public_key_pem, manifest, damaged)


def test_another_key_fails(signer: ModelSigner, tmp_path: Path) -> None:
    other = ModelSigner.load_or_create(tmp_path / "other.pem")
    assert other.key_id != signer.key_id
    manifest = _manifest()
    with pytest.raises(IntegrityError, match=other.key_id):
        verify_manifest(other.public_key_pem, manifest, signer.sign(manifest))


def test_a_public_key_that_is_not_ed25519_fails(signer: ModelSigner) -> None:
    ec_public = (
        generate_private_key(SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    manifest = _manifest()
    signature = signer.sign(manifest)
    with pytest.raises(IntegrityError, match="not an Ed25519 public key"):
        verify_manifest(ec_public, manifest, signature)
    with pytest.raises(IntegrityError, match="not a PEM public key"):
        verify_manifest(b"not a key", manifest, signature)


def test_key_id_is_the_raw_public_key_digest(signer: ModelSigner) -> None:
    public = serialization.load_pem_public_key(signer.public_key_pem)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert signer.key_id == hashlib.sha256(raw).hexdigest()[:16]
    assert public_key_id(signer.public_key_pem) == signer.key_id


def test_the_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    first = ModelSigner.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_bytes()
    assert content.startswith(b"-----BEGIN PRIVATE KEY-----")
    second = ModelSigner.load_or_create(path)
    assert second.public_key_pem == first.public_key_pem
    assert path.read_bytes() == content
    assert os.listdir(path.parent) == ["signing.pem"]  # no temporary file left behind


def test_the_key_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        ModelSigner.load_or_create(tmp_path / "signing.pem")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "signing.pem").stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.pem"
    ModelSigner.load_or_create(path)
    path.chmod(mode)
    with pytest.raises(InvalidArgumentError, match=f"{path}.*mode {mode:04o}.*chmod 600"):
        ModelSigner.load_or_create(path)


def test_a_read_only_key_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    created = ModelSigner.load_or_create(path)
    path.chmod(0o400)
    assert ModelSigner.load_or_create(path).key_id == created.key_id


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"hello\n", "not an unencrypted PKCS8 PEM Ed25519 private key"),
        (b"", "not an unencrypted PKCS8 PEM Ed25519 private key"),
        ("ec", "holds a key of type ECPrivateKey; an Ed25519 private key is required"),
        ("encrypted", "not an unencrypted PKCS8 PEM Ed25519 private key"),
    ],
)
def test_a_file_that_is_not_an_ed25519_key_is_a_clear_error(
    tmp_path: Path, content: bytes | str, match: str
) -> None:
    if content == "ec":
        content = generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    elif content == "encrypted":
        content = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    assert isinstance(content, bytes)
    path = tmp_path / "signing.pem"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(InvalidArgumentError, match=f"signing key {path} .*{match}"):
        ModelSigner.load_or_create(path)
    assert path.read_bytes() == content  # never replaced


def test_a_directory_in_place_of_the_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        ModelSigner.load_or_create(tmp_path)


# Each racer generates its own key and writes its temporary file, then waits at the
# publishing `os.link` until every racer has got there, so that all of them try to
# publish at once and all but one must find the name taken.
_RACER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from ofa_fleet.delivery.signing import ModelSigner

    key_path, gate, racers = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    real_link = os.link

    def link_when_all_are_ready(src, dst, **kwargs):
        (gate / str(os.getpid())).touch()
        deadline = time.monotonic() + 20
        while len(os.listdir(gate)) < racers and time.monotonic() < deadline:
            time.sleep(0.001)
        return real_link(src, dst, **kwargs)

    os.link = link_when_all_are_ready
    signer = ModelSigner.load_or_create(key_path)
    print(json.dumps({"key_id": signer.key_id, "pem": signer.public_key_pem.decode()}))
    """
)


def test_processes_racing_to_create_the_key_end_with_one_key(tmp_path: Path) -> None:
    key_path, gate, racers = tmp_path / "shared" / "signing.pem", tmp_path / "gate", 4
    gate.mkdir()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(key_path), str(gate), str(racers)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(racers)
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        results.append(json.loads(stdout))
    assert len(os.listdir(gate)) == racers  # every racer reached the link, none skipped it
    assert len({r["key_id"] for r in results}) == 1
    assert len({r["pem"] for r in results}) == 1
    assert ModelSigner.load_or_create(key_path).key_id == results[0]["key_id"]
    assert os.listdir(key_path.parent) == ["signing.pem"]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_a_filesystem_without_hard_links_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse_link(src: object, dst: object, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse_link)
    with pytest.raises(FailedPreconditionError, match="refuses hard links"):
        ModelSigner.load_or_create(tmp_path / "signing.pem")
    assert os.listdir(tmp_path) == []


def test_a_dangling_link_in_place_of_the_key_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    path.symlink_to(tmp_path / "gone.pem")
    with pytest.raises(NotFoundError, match=f"signing key {path} does not exist"):
        ModelSigner.load_or_create(path)
