"""Stored models moved onto the current signing key when delivery starts after a rotation.

Devices that trust only the new key (enrolled after the rotation) must be able to verify
every model delivery serves, including those specialized before it. So each stored
signature a retired key made is replaced by the current key's. A signature that no key
this server holds made is left as it is and counted: signing it again would turn a record
altered in the database into one every device accepts, which is exactly what the
signature is there to prevent. Ed25519 signatures are deterministic, so replicas starting
together write the same bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.delivery.store.model_store import ModelStore

log = logging.getLogger(__name__)


@dataclass
class SignatureCheck:
    """What a start-up pass over the stored signatures found."""

    current: int = 0
    signed_again: int = 0
    unknown: int = 0


def sign_with_current_key(store: ModelStore, signer: ModelSigner) -> SignatureCheck:
    """Sign again every stored model a retired key signed; count those no key signed."""
    check = SignatureCheck()

    def signature_for(manifest_bytes: bytes, signature: bytes) -> bytes | None:
        if signer.signed(manifest_bytes, signature):
            check.current += 1
            return None
        if signer.signed_by_retired(manifest_bytes, signature):
            check.signed_again += 1
            return signer.sign_bytes(manifest_bytes)
        check.unknown += 1
        return None

    store.sign_again(signature_for)
    if check.signed_again:
        log.info(
            "stored models signed again with the current key",
            extra={"models": check.signed_again, "key_id": signer.key_id},
        )
    if check.unknown:
        log.warning(
            "stored models are signed by no key this server holds, and devices refuse "
            "them; if a key of yours signed them, start with --retired-signing-key naming "
            "it to sign them again",
            extra={"models": check.unknown, "key_id": signer.key_id},
        )
    return check
