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
    report = json.loads(result.stdout)
    rows = {row["call"]: row for row in report["rows"]}
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
    # The interceptor's own code, called in process: every variant does more than the
    # servicer alone, and each is set against the bare server's CPU per call.
    in_process = report["in_process"]
    bare = in_process["bare µs/call in process"]
    assert bare > 0
    for variant in VARIANTS[1:]:
        assert in_process[f"{variant} µs/call in process"] > bare
        assert 0 < in_process[f"{variant} in process, share of the bare server's CPU"] < 1
