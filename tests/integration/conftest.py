"""One small digits supernet, trained once per test session and shared by every CLI test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli import ofa_fleet


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "supernet.ckpt"
    result = ofa_fleet(
        "train", "--data", "digits", "--out", str(path), "--epochs-per-phase", "1", "--json"
    )
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 4
    assert len(summary["supernet_version"]) == 16
    return path
