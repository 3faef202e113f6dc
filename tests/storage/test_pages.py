"""Page tokens and sizes shared by every listing."""

from __future__ import annotations

import pytest

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.storage.pages import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    check_page_size,
    decode_page_token,
    encode_page_token,
)


def test_a_token_names_its_listing_and_last_key() -> None:
    token = encode_page_token("models/pi", "1700000000000000:ab")
    assert "=" not in token
    assert decode_page_token(token, "models/pi") == "1700000000000000:ab"
    assert decode_page_token("", "models/pi") == ""


@pytest.mark.parametrize("token", ["not base64 !", "bW9kZWxz", "x"])
def test_a_token_from_elsewhere_is_refused(token: str) -> None:
    with pytest.raises(InvalidArgumentError, match="page_token is not one this listing issued"):
        decode_page_token(token, "models/pi")


def test_a_token_for_other_filters_is_refused() -> None:
    token = encode_page_token("models/pi", "1:ab")
    with pytest.raises(InvalidArgumentError, match="same filters"):
        decode_page_token(token, "models/jetson")


def test_page_sizes() -> None:
    assert check_page_size(0) == DEFAULT_PAGE_SIZE
    assert check_page_size(MAX_PAGE_SIZE) == MAX_PAGE_SIZE
    for wrong in (-1, MAX_PAGE_SIZE + 1):
        with pytest.raises(InvalidArgumentError, match=r"page_size must be 1-1000 \(0 means 100\)"):
            check_page_size(wrong)
