"""What a device has installed: the pointer file `current.json` and its records.

The pointer names the current model and the one before it (kept for rollback), each as
its manifest and delivery's signature of it; the model bytes themselves lie in
`models/<sha256>.onnx`, immutable and named by content. Manifest and signature live in the
pointer rather than beside the bytes because two manifests can describe the same bytes
(the same subnet specialized again for a new profile revision): a file per sha256 would
have to be overwritten in place, and a crash between writing a manifest and its signature
would leave the current model unverifiable. One pointer file, replaced atomically, moves
manifest, signature and bytes together.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ofa_fleet.agent.digest import check_file
from ofa_fleet.agent.trust import TrustedKeys
from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.errors import IntegrityError, InvalidArgumentError
from ofa_fleet.storage.durable import write_atomic

FORMAT = "ofa-fleet.installed/1"


@dataclass(frozen=True)
class InstalledModel:
    """One installed model: what delivery said about it, its signature, where its bytes are."""

    manifest: Manifest
    signature: bytes
    path: Path

    def verify(self, keys: TrustedKeys) -> None:
        """Raise `IntegrityError` unless the signature holds and the file matches the manifest.

        Reads the whole file: for a boot-time check or after a suspected fault, not per use.
        """
        keys.verify(self.manifest, self.signature)
        if not self.path.is_file():
            raise IntegrityError(f"installed model {self.manifest.sha256} is missing its file")
        check_file(self.path, self.manifest)


@dataclass(frozen=True)
class Record:
    """A manifest and its signature, as the pointer keeps them."""

    manifest: Manifest
    signature: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest.to_dict(),
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Record:
        if not isinstance(data, dict):
            raise InvalidArgumentError("a pointer record must be an object")
        manifest_data = data.get("manifest")
        if not isinstance(manifest_data, dict):
            raise InvalidArgumentError("a pointer record's manifest must be an object")
        manifest = Manifest.from_dict(manifest_data)
        try:
            signature = base64.b64decode(str(data.get("signature")), validate=True)
        except binascii.Error as exc:
            raise InvalidArgumentError(f"record signature is not base64: {exc}") from None
        return cls(manifest, signature)


@dataclass(frozen=True)
class Pointer:
    """The current model and the previous one; either may be absent."""

    current: Record | None = None
    previous: Record | None = None

    def shas(self) -> set[str]:
        """The sha256 of every model the pointer references (whose files must be kept)."""
        return {r.manifest.sha256 for r in (self.current, self.previous) if r is not None}

    def to_bytes(self) -> bytes:
        data = {
            "format": FORMAT,
            "current": self.current.to_dict() if self.current else None,
            "previous": self.previous.to_dict() if self.previous else None,
        }
        return json.dumps(data, sort_keys=True, indent=1).encode()


def read_pointer(path: Path) -> Pointer:
    """The pointer at `path`; an empty one when there is none yet.

    Raises `IntegrityError` naming the file when it cannot be read: it is only ever
    replaced whole, so damage means something outside the agent changed it.
    """
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return Pointer()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"installed-model pointer {path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IntegrityError(f"installed-model pointer {path} is not in format {FORMAT}")
    try:
        return Pointer(
            current=Record.from_dict(data["current"]) if data.get("current") else None,
            previous=Record.from_dict(data["previous"]) if data.get("previous") else None,
        )
    except InvalidArgumentError as exc:
        raise IntegrityError(f"installed-model pointer {path} is damaged: {exc}") from None


def write_pointer(path: Path, pointer: Pointer) -> None:
    """Replace the pointer atomically and durably (see `durable.write_atomic`)."""
    write_atomic(path, pointer.to_bytes())
