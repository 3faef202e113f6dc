"""The signing keys a device trusts: delivery's first, pinned on first use, and those it
endorsed since.

Trust on first use, as SSH does with host keys: the first `GetSigningKey` answer is kept
in `STATE/signing-key.pem`. After that, a key delivery presents is trusted only when a key
the device already trusts endorsed it (a signature over the new public key, see
`contract.signatures`); it is then kept in `STATE/signing-keys/`. That is how an operator
rotates the key without touching devices. Any other key is refused with a message that
says so, whatever the reason (a key replaced without a rotation, a different delivery, an
impostor): the device cannot tell them apart, and installing an unknown key's model is
exactly the attack the signature exists to stop. An operator who replaced the key on
purpose removes both paths.

A device keeps every key it came to trust, because the model it runs may have been signed
by an earlier one, and delivery replicas in the middle of a rolling update may still sign
with it. A key that must no longer be trusted (a leaked one) cannot be retired this way:
whoever holds it can endorse keys of their own. Such devices are set up again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.contract.signatures import public_key_id, verify_endorsement, verify_manifest
from ofa_fleet.errors import IntegrityError
from ofa_fleet.storage.durable import write_atomic

KEY_NAME = "signing-key.pem"
ENDORSED_DIR = "signing-keys"
# Rotations a device follows before it asks to be set up again; each costs a verify at most.
MAX_TRUSTED_KEYS = 16
# Endorsements of one key looked at, as delivery sends at most this many.
MAX_ENDORSEMENTS = 8

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 public key (SubjectPublicKeyInfo PEM) and its id."""

    pem: bytes
    key_id: str


@dataclass(frozen=True)
class Endorsement:
    """A key's signature over another public key, as `GetSigningKey` carries it."""

    signer_key_id: str
    signature: bytes


@dataclass(frozen=True)
class TrustedKeys:
    """Every key this device accepts manifests from, the pinned one first."""

    keys: tuple[SigningKey, ...]

    @classmethod
    def of(cls, *pems: bytes) -> TrustedKeys:
        """The keys of these PEM public keys, in this order."""
        return cls(tuple(SigningKey(pem, public_key_id(pem)) for pem in pems))

    @property
    def key_ids(self) -> list[str]:
        return [key.key_id for key in self.keys]

    def find(self, key_id: str) -> SigningKey | None:
        return next((key for key in self.keys if key.key_id == key_id), None)

    def verify(self, manifest: Manifest, signature: bytes, claimed_key_id: str = "") -> None:
        """Raise `IntegrityError` unless one of the keys signed `manifest`.

        The key the manifest names is tried first, then the others: the name is not part
        of what was signed, so it only saves work.
        """
        named = self.find(claimed_key_id)
        ordered = ([named] if named else []) + [k for k in self.keys if k is not named]
        for key in ordered:
            try:
                verify_manifest(key.pem, manifest, signature)
            except IntegrityError:
                continue
            return
        raise IntegrityError(
            f"manifest signature does not verify for model sha256 {manifest.sha256} with "
            f"any key this device trusts ({', '.join(self.key_ids)}; delivery names key "
            f"{claimed_key_id or '(none)'}): the manifest or its signature was altered, or "
            "another key signed it"
        )


def key_path(state_dir: Path) -> Path:
    return Path(state_dir) / KEY_NAME


def endorsed_dir(state_dir: Path) -> Path:
    return Path(state_dir) / ENDORSED_DIR


def load_trusted(state_dir: Path) -> TrustedKeys | None:
    """The keys this device trusts, or None before the first `GetSigningKey`."""
    pinned = _load(key_path(state_dir))
    if pinned is None:
        return None
    keys = [pinned]
    folder = endorsed_dir(state_dir)
    if folder.is_dir():
        for path in sorted(folder.glob("*.pem")):
            key = _load(path)
            if key is not None and key.key_id not in [k.key_id for k in keys]:
                keys.append(key)
    return TrustedKeys(tuple(keys))


def trust(
    state_dir: Path,
    served_pem: bytes,
    served_key_id: str,
    endorsements: Iterable[Endorsement] = (),
) -> TrustedKeys:
    """The keys to verify models with, given the key delivery serves now.

    Pins the served key when none is trusted yet; adds it when a trusted key endorsed it;
    raises `IntegrityError` otherwise, when an endorsement by a trusted key does not
    verify, or when the key's id is not the id of the key it came with.
    """
    served = SigningKey(served_pem, public_key_id(served_pem))
    if served.key_id != served_key_id:
        raise IntegrityError(
            f"delivery served a signing key whose id is {served.key_id} but called it "
            f"{served_key_id}; refusing it"
        )
    trusted = load_trusted(state_dir)
    if trusted is None:
        write_atomic(key_path(state_dir), served.pem)
        return TrustedKeys((served,))
    if trusted.find(served.key_id) is not None:
        return trusted
    offered = list(endorsements)[:MAX_ENDORSEMENTS]
    for endorsement in offered:
        signer = trusted.find(endorsement.signer_key_id)
        if signer is not None:
            verify_endorsement(signer.pem, served.pem, endorsement.signature)
            return _add(state_dir, trusted, served, signer)
    raise IntegrityError(
        f"delivery presents signing key {served.key_id}, endorsed by "
        f"{', '.join(e.signer_key_id for e in offered) or 'no key'}, but this device trusts "
        f"only {', '.join(trusted.key_ids)}; refusing its models (if the key was replaced "
        f"without a rotation, remove {key_path(state_dir)} and "
        f"{endorsed_dir(state_dir)} to trust delivery's key on the next start)"
    )


def _add(
    state_dir: Path, trusted: TrustedKeys, key: SigningKey, endorser: SigningKey
) -> TrustedKeys:
    if len(trusted.keys) >= MAX_TRUSTED_KEYS:
        raise IntegrityError(
            f"delivery presents signing key {key.key_id}, endorsed by {endorser.key_id}, but "
            f"this device already trusts {MAX_TRUSTED_KEYS} keys, as many as it keeps; set "
            "it up again (remove its signing-key.pem and signing-keys)"
        )
    folder = endorsed_dir(state_dir)
    folder.mkdir(exist_ok=True)
    write_atomic(folder / f"{key.key_id}.pem", key.pem)
    log.info(
        "trusting a new signing key",
        extra={"key_id": key.key_id, "endorsed_by": endorser.key_id},
    )
    return TrustedKeys((*trusted.keys, key))


def _load(path: Path) -> SigningKey | None:
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return SigningKey(pem, public_key_id(pem))
    except IntegrityError as exc:
        raise IntegrityError(
            f"trusted signing key {path} is damaged ({exc}); remove it (and the other "
            "trusted keys) to trust delivery's key again on the next start"
        ) from None
