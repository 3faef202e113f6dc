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
