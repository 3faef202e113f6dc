"""The signing key a device trusts: delivery's, pinned the first time it is seen.

Trust on first use, as SSH does with host keys: the first `GetSigningKey` answer is kept
in `STATE/signing-key.pem` and from then on the device accepts models signed by that key
only. A delivery that later presents another key id is refused with a message that says
so, whatever the reason (a rotated key, a different delivery, an impostor): the device
cannot tell them apart, and installing an unknown key's model is exactly the attack the
signature exists to stop. An operator who rotated the key on purpose removes the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ofa_fleet.contract.signatures import public_key_id
from ofa_fleet.errors import IntegrityError
from ofa_fleet.storage.durable import write_atomic

KEY_NAME = "signing-key.pem"


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 public key (SubjectPublicKeyInfo PEM) and its id."""

    pem: bytes
    key_id: str


def key_path(state_dir: Path) -> Path:
    return Path(state_dir) / KEY_NAME


def load_pinned(state_dir: Path) -> SigningKey | None:
    """The pinned key, or None before the first `GetSigningKey`."""
    path = key_path(state_dir)
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return SigningKey(pem, public_key_id(pem))
    except IntegrityError as exc:
        raise IntegrityError(
            f"pinned signing key {path} is damaged ({exc}); remove it to trust delivery's "
            "key again on the next start"
        ) from None


def trust(state_dir: Path, served_pem: bytes, served_key_id: str) -> SigningKey:
    """The key to verify models with, given what delivery serves now.

    Pins the served key when none is pinned yet; raises `IntegrityError` when it differs
    from the pinned one, or when its id is not the id of the key it came with.
    """
    served = SigningKey(served_pem, public_key_id(served_pem))
    if served.key_id != served_key_id:
        raise IntegrityError(
            f"delivery served a signing key whose id is {served.key_id} but called it "
            f"{served_key_id}; refusing it"
        )
    pinned = load_pinned(state_dir)
    if pinned is None:
        write_atomic(key_path(state_dir), served.pem)
        return served
    check_key_id(pinned, served.key_id, key_path(state_dir))
    return pinned


def check_key_id(pinned: SigningKey, presented: str, path: Path) -> None:
    """Raise `IntegrityError` unless delivery presents the pinned key's id."""
    if presented != pinned.key_id:
        raise IntegrityError(
            f"delivery presents signing key {presented or '(none)'}, but this device pinned "
            f"key {pinned.key_id} on first use; refusing its models (if the key was "
            f"rotated on purpose, remove {path} to trust the new one)"
        )
