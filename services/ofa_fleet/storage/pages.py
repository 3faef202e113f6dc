"""Keyset pagination shared by every listing: a page of values and an opaque token.

The token names the listing (its filters) and the last key shown, so the next page starts
strictly after it: no row is skipped or shown twice while others are inserted, which an
offset cannot promise. A token from another listing is refused rather than misread.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Generic, TypeVar

from ofa_fleet.errors import InvalidArgumentError

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; `next_token` is empty on the last one."""

    items: tuple[T, ...]
    next_token: str


def check_page_size(value: int, field: str = "page_size") -> int:
    """The page size to use: 0 means the default; otherwise 1 to `MAX_PAGE_SIZE`."""
    if value == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidArgumentError(
            f"{field} must be 1-{MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE}), got {value}"
        )
    return value


def encode_page_token(listing: str, last: str) -> str:
    return base64.urlsafe_b64encode(f"{listing}\n{last}".encode()).decode().rstrip("=")


def decode_page_token(token: str, listing: str) -> str:
    """The last key of the previous page ("" for the first page)."""
    if not token:
        return ""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    issued_for, _, last = raw.partition("\n")
    if issued_for != listing or not last:
        raise InvalidArgumentError(
            "page_token is not one this listing issued; pass the next_page_token of the "
            "previous page with the same filters, or leave it empty for the first page"
        )
    return last
