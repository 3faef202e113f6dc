"""Bearer tokens the registry issues: shown once, stored only as a digest.

A token carries 256 random bits, so a plain sha256 of it is as hard to reverse as the
token is to guess; a slow password hash would add latency to every device call and no
safety. The prefix says what a token is for, so a lookup goes to the right table and a
token pasted into the wrong place is recognisable in a bug report without being shown.
"""

from __future__ import annotations

import hashlib
import secrets

DEVICE_PREFIX = "ofa_device_"
ENROLMENT_PREFIX = "ofa_enrol_"
TOKEN_BYTES = 32


def issue(prefix: str) -> tuple[str, str]:
    """A new token and the digest to store in its place."""
    token = prefix + secrets.token_urlsafe(TOKEN_BYTES)
    return token, digest(token)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_device_id() -> str:
    return "d-" + secrets.token_hex(10)
