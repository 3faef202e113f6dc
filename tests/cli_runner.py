"""Running `ofa-fleet` as a user does: a real process, one torch thread (see tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys


def ofa_fleet(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ofa_fleet.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"ofa-fleet {' '.join(args)} failed: {result.stderr}")
    return result
