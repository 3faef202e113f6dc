"""GetCarbonLedger's pages: each list (profiles, fleets) pages on its own by name, every
row shows once, every page carries the totals, and a token serves only its listing."""

from __future__ import annotations

import pytest

from ofa_fleet.delivery.carbon.report import one_page
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.v1 import delivery_pb2

LISTING = "carbon/0123456789abcdef/"


def whole() -> delivery_pb2.GetCarbonLedgerResponse:
    return delivery_pb2.GetCarbonLedgerResponse(
        supernet_version="0123456789abcdef",
        devices=40,
        profiles=[delivery_pb2.ProfileCarbon(profile_name=f"p{i}") for i in (3, 0, 4, 1, 2)],
        fleets=[delivery_pb2.FleetCarbon(fleet_name=f"f{i}") for i in (2, 0, 1)],
    )


def test_pages_give_every_row_once_with_the_totals_on_each() -> None:
    pages, token = [], ""
    while True:
        page = one_page(whole(), LISTING, 2, token)
        pages.append(page)
        assert page.devices == 40 and page.supernet_version == "0123456789abcdef"
        token = page.next_page_token
        if not token:
            break
    assert [[p.profile_name for p in page.profiles] for page in pages] == [
        ["p0", "p1"],
        ["p2", "p3"],
        ["p4"],
    ]
    assert [[f.fleet_name for f in page.fleets] for page in pages] == [["f0", "f1"], ["f2"], []]


def test_one_page_holds_everything_when_it_fits() -> None:
    page = one_page(whole(), LISTING, 100, "")
    assert len(page.profiles) == 5 and len(page.fleets) == 3 and page.next_page_token == ""


def test_a_token_serves_only_the_listing_that_issued_it() -> None:
    token = one_page(whole(), LISTING, 1, "").next_page_token
    with pytest.raises(InvalidArgumentError, match="page_token is not one this listing issued"):
        one_page(whole(), "carbon/another-supernet/", 1, token)
    with pytest.raises(InvalidArgumentError, match="page_token is not one this listing issued"):
        one_page(whole(), LISTING, 1, "not a token")
