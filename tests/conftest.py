"""Shared fixtures.

Tests run torch on one thread: with two, a second busy process on a two-core machine
makes OpenMP's threads wait on each other and small ops slow down fifty-fold (measured),
turning a loaded CI machine into a timeout. One thread keeps the suite's time stable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.integration.cli import ofa_fleet

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """One small digits supernet, trained once per session for every test that needs one."""
    path = tmp_path_factory.mktemp("supernet") / "supernet.ckpt"
    result = ofa_fleet(
        "train", "--data", "digits", "--out", str(path), "--epochs-per-phase", "1", "--json"
    )
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 4
    assert len(summary["supernet_version"]) == 16
    return path


@pytest.fixture(scope="session")
def lut(checkpoint, tmp_path_factory) -> Path:
    """This machine's latency table for the session supernet's space (a quick profile)."""
    out = tmp_path_factory.mktemp("lut") / "lut.json"
    result = ofa_fleet(
        *("profile-device", "--checkpoint", str(checkpoint), "--out", str(out)),
        *("--rounds", "2", "--whole-models", "4", "--json"),
    )
    summary = json.loads(result.stdout)
    assert summary["layers"] == len(json.loads(out.read_text())["layers"]) > 100
    assert summary["threads"] == 1
    return out
