"""The check a device makes before installing: delivery's Ed25519 signature of a manifest.

The sha256 in a manifest proves the model bytes are the ones described; the signature over
the manifest's canonical bytes proves delivery described them. Devices hold delivery's
public key and refuse anything that does not verify against it. Delivery's signer
(`delivery.signing`) names its key with the same `key_id`, so a device and a replica can
tell which key they mean without showing it.

A key is rotated by endorsement: delivery keeps each retired key only to sign the new
public key (`endorsement_bytes`), and a device that trusts the retired key checks that
signature (`verify_endorsement`) before it trusts the new one. A device never takes a key
on a server's word alone once it trusts one.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.errors import IntegrityError

KEY_ID_HEX_DIGITS = 16
ENDORSEMENT_PREFIX = b"ofa-fleet.key-endorsement/1\n"


def public_key_id(public_key_pem: bytes) -> str:
    """The key id of a PEM public key, as delivery's `ModelSigner.key_id` spells it."""
    return key_id(load_public_key(public_key_pem))


def verify_manifest(public_key_pem: bytes, manifest: Manifest, signature: bytes) -> None:
    """Raise `IntegrityError` unless `signature` is the key's signature of `manifest`."""
    public = load_public_key(public_key_pem)
    try:
        public.verify(bytes(signature), manifest.canonical_bytes())
    except InvalidSignature:
        raise IntegrityError(
            f"manifest signature does not verify for model sha256 {manifest.sha256} with "
            f"key {key_id(public)}: the manifest or its signature was altered, or another "
            "key signed it"
        ) from None


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public_key(public)).hexdigest()[:KEY_ID_HEX_DIGITS]


def raw_public_key(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def endorsement_bytes(endorsed: Ed25519PublicKey) -> bytes:
    """What a retired key signs to vouch for `endorsed`: a fixed prefix, so the signature
    can never be mistaken for a manifest's, and the endorsed key's raw bytes."""
    return ENDORSEMENT_PREFIX + raw_public_key(endorsed)


def verify_endorsement(signer_pem: bytes, endorsed_pem: bytes, signature: bytes) -> None:
    """Raise `IntegrityError` unless `signature` is the signer's endorsement of the key."""
    signer = load_public_key(signer_pem)
    endorsed = load_public_key(endorsed_pem)
    try:
        signer.verify(bytes(signature), endorsement_bytes(endorsed))
    except InvalidSignature:
        raise IntegrityError(
            f"the endorsement of signing key {key_id(endorsed)} by key {key_id(signer)} "
            "does not verify"
        ) from None


def load_public_key(public_key_pem: bytes) -> Ed25519PublicKey:
    try:
        public = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise IntegrityError(f"signing public key is not a PEM public key: {exc}") from None
    if not isinstance(public, Ed25519PublicKey):
        raise IntegrityError(
            f"signing public key is of type {type(public).__name__}, not an Ed25519 public key"
        )
    return public
