"""What delivery says about a model, checked before a single byte of it is downloaded.

Only `canonical_manifest` is signed; the message's other fields repeat it for
convenience. The device therefore rebuilds the manifest from the signed bytes, verifies
the signature over them with a key it trusts, and refuses a message whose other fields
say anything else: a field that disagrees with what was signed is either a bug or an
attempt to make the device act on unsigned information, and either way it is refused.
Checking here, not only at install, saves downloading a model that would be refused.
"""

from __future__ import annotations

from typing import Any

from ofa_fleet.agent.trust import TrustedKeys
from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.errors import IntegrityError, InvalidArgumentError
from ofa_fleet.v1 import delivery_pb2


def signed_manifest(message: delivery_pb2.ModelManifest, keys: TrustedKeys) -> Manifest:
    """The manifest delivery signed, once every check holds; `IntegrityError` otherwise."""
    try:
        manifest = Manifest.from_bytes(message.canonical_manifest)
    except InvalidArgumentError as exc:
        raise IntegrityError(f"delivery sent a manifest that cannot be read: {exc}") from None
    keys.verify(manifest, message.signature, message.key_id)
    for name, signed, said in _fields(manifest, message):
        if signed != said:
            raise IntegrityError(
                f"manifest field {name} says {said!r} but the signed manifest of model "
                f"{manifest.sha256} says {signed!r}; refusing it"
            )
    return manifest


def _fields(manifest: Manifest, message: delivery_pb2.ModelManifest) -> list[tuple[str, Any, Any]]:
    pairs: list[tuple[str, Any, Any]] = [
        ("sha256", manifest.sha256, message.sha256),
        ("size_bytes", manifest.size_bytes, message.size_bytes),
        ("arch", manifest.arch, message.arch),
        ("profile_name", manifest.profile_name, message.profile_name),
        ("profile_revision", manifest.profile_revision, message.profile_revision),
        ("supernet_version", manifest.supernet_version, message.supernet_version),
    ]
    if message.HasField("create_time"):
        pairs.append(("create_time", manifest.created_us, message.create_time.ToMicroseconds()))
    return pairs
