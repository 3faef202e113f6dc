"""The check a device makes before installing: delivery's Ed25519 signature of a manifest.

The sha256 in a manifest proves the model bytes are the ones described; the signature over
the manifest's canonical bytes proves delivery described them. Devices hold delivery's
public key and refuse anything that does not verify against it. Delivery's signer
(`delivery.signing`) names its key with the same `key_id`, so a device and a replica can
tell which key they mean without showing it.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.errors import IntegrityError

KEY_ID_HEX_DIGITS = 16


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
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:KEY_ID_HEX_DIGITS]


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
