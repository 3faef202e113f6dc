"""Model signing: delivery's Ed25519 key (the device's check is `contract.signatures`).

The sha256 in a manifest proves the model bytes are the ones described; the signature over
the manifest's canonical bytes proves delivery described them. Devices hold delivery's
public key and refuse anything that does not verify against it.

The private key lives in one file that every delivery replica shares (a volume or a
mounted secret). The first replica to start creates it; replicas starting at the same
moment must end up with the same key, or devices would be served signatures from keys
they do not hold. The key is therefore written whole to a private temporary file and then
published with `os.link`, which, unlike a rename, fails when the name already exists: one
replica's key wins and every other replica reads it back.

A key file readable by group or others is refused rather than warned about: whoever can
read it can sign models that every device of the fleet will install, and a warning in a
server log is read by nobody before the damage is done (OpenSSH refuses such keys for the
same reason). The fix is one `chmod 600`, or `defaultMode: 0400` on a Kubernetes secret.

Rotation: a signer may also hold retired keys. It never signs a manifest with them; each
only endorses the current public key once, and `GetSigningKey` hands those endorsements
to devices, which move to the new key on the word of a key they already trust
(`contract.signatures`). Stored models signed by a retired key are signed again with the
current one when delivery starts (`delivery.key_rotation`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.contract.signatures import endorsement_bytes, key_id
from ofa_fleet.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from ofa_fleet.storage.durable import publish_new

# Retired keys one signer endorses its key with: each is a signature devices may check.
MAX_RETIRED_KEYS = 8


@dataclass(frozen=True)
class Endorsement:
    """A retired key's signature over the current public key (`endorsement_bytes`)."""

    signer_key_id: str
    signature: bytes


class ModelSigner:
    """Signs manifests with one Ed25519 private key; endorses it with the retired ones."""

    def __init__(
        self, private_key: Ed25519PrivateKey, retired: Sequence[Ed25519PrivateKey] = ()
    ) -> None:
        self._private_key = private_key
        public = private_key.public_key()
        self._public = public
        self._public_key_pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._key_id = key_id(public)
        if len(retired) > MAX_RETIRED_KEYS:
            raise InvalidArgumentError(
                f"{len(retired)} retired signing keys given; at most {MAX_RETIRED_KEYS}"
            )
        self._retired = [key.public_key() for key in retired]
        ids = [key_id(key) for key in self._retired]
        if self._key_id in ids:
            raise InvalidArgumentError(
                f"signing key {self._key_id} is also named as a retired key; a rotation "
                "retires the old key and signs with a new one"
            )
        if len(set(ids)) != len(ids):
            raise InvalidArgumentError(f"a retired signing key is named twice: {ids}")
        statement = endorsement_bytes(public)
        self._endorsements = tuple(
            Endorsement(key_id(key.public_key()), key.sign(statement)) for key in retired
        )

    @classmethod
    def load_or_create(cls, path: Path, retired: Sequence[Path] = ()) -> ModelSigner:
        """The key at `path`, created first if there is none, and the retired keys.

        Raises `InvalidArgumentError` naming the path when a file is not an unencrypted
        PKCS8 PEM Ed25519 private key, or when group or others may access it. Retired
        keys are never created: a missing one is `NotFoundError`.
        """
        path = Path(path)
        if not path.exists():
            _publish_new_key(path)
        return cls(_read_private_key(path), [_read_private_key(Path(p)) for p in retired])

    @property
    def public_key_pem(self) -> bytes:
        """The public key, SubjectPublicKeyInfo PEM: what delivery serves to devices."""
        return self._public_key_pem

    @property
    def key_id(self) -> str:
        """First 16 hex digits of the sha256 of the raw public key, to tell keys apart."""
        return self._key_id

    @property
    def endorsements(self) -> tuple[Endorsement, ...]:
        """Each retired key's endorsement of this key, in the order the keys were given."""
        return self._endorsements

    def sign(self, manifest: Manifest) -> bytes:
        """The 64-byte Ed25519 signature over `manifest.canonical_bytes()`."""
        return self.sign_bytes(manifest.canonical_bytes())

    def sign_bytes(self, manifest_bytes: bytes) -> bytes:
        """The signature over a manifest's canonical bytes as stored."""
        return self._private_key.sign(manifest_bytes)

    def signed(self, manifest_bytes: bytes, signature: bytes) -> bool:
        """Whether the current key made `signature` over `manifest_bytes`."""
        return _verifies(self._public, manifest_bytes, signature)

    def signed_by_retired(self, manifest_bytes: bytes, signature: bytes) -> bool:
        """Whether one of the retired keys made `signature` over `manifest_bytes`."""
        return any(_verifies(key, manifest_bytes, signature) for key in self._retired)


def _verifies(public: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        public.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _read_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read()
    except IsADirectoryError:
        raise InvalidArgumentError(f"signing key {path} is a directory, not a key file") from None
    except FileNotFoundError:
        raise NotFoundError(
            f"signing key {path} does not exist (a dangling link, or removed while read)"
        ) from None
    if not stat.S_ISREG(mode):
        raise InvalidArgumentError(f"signing key {path} is not a regular file")
    if mode & 0o077:
        raise InvalidArgumentError(
            f"signing key {path} has mode {stat.S_IMODE(mode):04o}; group and others must "
            f"have no access (0600 or 0400): run `chmod 600 {path}`"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidArgumentError(
            f"signing key {path} is not an unencrypted PKCS8 PEM Ed25519 private key: {exc}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidArgumentError(
            f"signing key {path} holds a key of type {type(key).__name__}; an Ed25519 "
            "private key is required"
        )
    return key


def _publish_new_key(path: Path) -> None:
    """Create a key at `path` unless another process gets there first.

    `storage.durable.publish_new` makes `path` name a whole key or nothing; when it
    finds `path` taken, another process won, and its key is used.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        publish_new(path, pem)  # False: another process published its key first; use it
    except OSError as exc:
        raise FailedPreconditionError(
            f"cannot create signing key {path}: its filesystem refuses hard links, which "
            f"publish the key atomically ({exc}); create the key on another filesystem "
            "or place one there yourself (PKCS8 PEM Ed25519, mode 0600)"
        ) from None
