"""A supernet ready for the stack: the session's checkpoint with a small predictor beside it.

The stack fits ``CKPT.predictor`` on first use with 100 measured subnets; 12 are enough
for servers that only have to start and specialize, at a fraction of the time. They are
measured on the session's Ray, which search and delivery tests share.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PREDICTOR_SAMPLES = 12


@pytest.fixture(scope="session")
def stack_checkpoint(
    checkpoint: Path, ray_local: None, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from ofa_fleet.stack.supernet import ensure_predictor

    path = tmp_path_factory.mktemp("stack") / "supernet.ckpt"
    shutil.copy(checkpoint, path)
    ensure_predictor(path, PREDICTOR_SAMPLES)
    return path
