"""Model signing: delivery's Ed25519 key, and the check a device makes before installing.

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
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ofa_fleet.delivery.manifest import Manifest
from ofa_fleet.errors import (
    FailedPreconditionError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
)
from ofa_fleet.storage.durable import fsync_directory

KEY_ID_HEX_DIGITS = 16


class ModelSigner:
    """Signs manifests with one Ed25519 private key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        public = private_key.public_key()
        self._public_key_pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._key_id = _key_id(public)

    @classmethod
    def load_or_create(cls, path: Path) -> ModelSigner:
        """The key at `path`, created first if there is none.

        Raises `InvalidArgumentError` naming the path when the file is not an unencrypted
        PKCS8 PEM Ed25519 private key, or when group or others may access it.
        """
        path = Path(path)
        if not path.exists():
            _publish_new_key(path)
        return cls(_read_private_key(path))

    @property
    def public_key_pem(self) -> bytes:
        """The public key, SubjectPublicKeyInfo PEM: what delivery serves to devices."""
        return self._public_key_pem

    @property
    def key_id(self) -> str:
        """First 16 hex digits of the sha256 of the raw public key, to tell keys apart."""
        return self._key_id

    def sign(self, manifest: Manifest) -> bytes:
        """The 64-byte Ed25519 signature over `manifest.canonical_bytes()`."""
        return self._private_key.sign(manifest.canonical_bytes())


def public_key_id(public_key_pem: bytes) -> str:
    """The key id of a PEM public key, as `ModelSigner.key_id` spells it."""
    return _key_id(_load_public_key(public_key_pem))


def verify_manifest(public_key_pem: bytes, manifest: Manifest, signature: bytes) -> None:
    """Raise `IntegrityError` unless `signature` is the key's signature of `manifest`."""
    public = _load_public_key(public_key_pem)
    try:
        public.verify(bytes(signature), manifest.canonical_bytes())
    except InvalidSignature:
        raise IntegrityError(
            f"manifest signature does not verify for model sha256 {manifest.sha256} with "
            f"key {_key_id(public)}: the manifest or its signature was altered, or another "
            "key signed it"
        ) from None


def _key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:KEY_ID_HEX_DIGITS]


def _load_public_key(public_key_pem: bytes) -> Ed25519PublicKey:
    try:
        public = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise IntegrityError(f"signing public key is not a PEM public key: {exc}") from None
    if not isinstance(public, Ed25519PublicKey):
        raise IntegrityError(
            f"signing public key is of type {type(public).__name__}, not an Ed25519 public key"
        )
    return public


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

    The key is fsynced under a temporary name (mode 0600 from its creation, by
    `mkstemp`) and only then linked to `path`, so `path` never names a partly written
    file; a link that finds `path` taken means another process won, and its key is used.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            view = memoryview(pem)
            while view:
                view = view[os.write(handle, view) :]
            os.fsync(handle)
        finally:
            os.close(handle)
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            pass  # another process published its key first; it is the one to use
        except OSError as exc:
            raise FailedPreconditionError(
                f"cannot create signing key {path}: its filesystem refuses hard links, which "
                f"publish the key atomically ({exc}); create the key on another filesystem "
                "or place one there yourself (PKCS8 PEM Ed25519, mode 0600)"
            ) from None
    finally:
        os.unlink(tmp_name)
    fsync_directory(path.parent)
