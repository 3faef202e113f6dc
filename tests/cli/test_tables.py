"""Tables never cut an identifier: on a narrow terminal its cell wraps instead of ending
in "…", so every character of a sha256 or an arch is still on screen."""

from __future__ import annotations

import io

from rich.console import Console

from ofa_fleet.console.output import listing

SHA = "0123456789abcdef" * 4


def test_a_narrow_listing_wraps_identifiers_whole() -> None:
    table = listing("models", ("sha256", "profile", "fleets"))
    table.add_row(SHA, "raspberry-pi-4", "pis, cameras-north, cameras-south")
    out = io.StringIO()
    Console(file=out, width=40, color_system=None).print(table)
    text = out.getvalue()
    assert "…" not in text
    first_column = "".join(
        line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")
    )
    assert first_column == SHA
