"""bench/interceptor_overhead.py: one short round answers every call behind every variant
and prints, for each call, its rates, CPU per call and the interceptor's share."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "interceptor_overhead.py"
VARIANTS = ("bare", "auth", "auth+metrics", "auth+metrics+log")


@pytest.mark.slow
def test_one_short_round_measures_every_call_behind_every_variant() -> None:
    result = subprocess.run(
        [
            *(sys.executable, str(BENCH), "--seconds", "0.5", "--rounds", "1"),
            *("--concurrency", "4", "--model-kib", "16", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = {row["call"]: row for row in json.loads(result.stdout)["rows"]}
    assert list(rows) == [
        "Heartbeat, constant answer",
        "Heartbeat",
        "GetModelManifest up to date",
        "ReadModel 16 KiB",
    ]
    for row in rows.values():
        for variant in VARIANTS:
            assert row[f"{variant} calls/s"] > 0  # a failed call would have ended the run
            assert row[f"{variant} CPU µs/call"] > 0
        for variant in VARIANTS[1:]:
            assert -1 < row[f"{variant} share of CPU"] < 1
