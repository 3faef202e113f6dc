"""A supernet ready for the stack: the session's checkpoint with a small predictor beside it.

The stack fits ``CKPT.predictor`` on first use with 100 measured subnets; 12 are enough
for servers that only have to start and specialize, at a fraction of the time. They are
measured on the session's Ray, which search and delivery tests share. Its scratch
reference (the carbon ledger's counterfactual unit) is measured for real too, on one small
network with a two-epoch cap instead of two networks with twelve: the demo's saving column
needs one, not the most exact one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import made_once

PREDICTOR_SAMPLES = 12
SCRATCH_EPOCH_CAP = 2


@pytest.fixture(scope="session")
def stack_checkpoint(
    checkpoint: Path, ray_local: None, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from ofa_fleet.carbon.scratch_reference import save_scratch_reference
    from ofa_fleet.core.arch import ArchConfig
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.stack.supernet import ensure_predictor
    from ofa_fleet.training.checkpoint_data import load_checkpoint_data
    from ofa_fleet.training.scratch_reference import measure_scratch_reference

    with made_once(tmp_path_factory, "stack") as folder:
        path, made = folder / "supernet.ckpt", folder / "made"
        if made.exists():  # written last: a worker that failed halfway leaves none
            return path
        shutil.copy(checkpoint, path)
        ensure_predictor(path, PREDICTOR_SAMPLES)
        loaded = load_checkpoint(path)
        reference = measure_scratch_reference(
            loaded,
            load_checkpoint_data(loaded),
            archs=[ArchConfig.min(loaded.space)],
            epoch_cap=SCRATCH_EPOCH_CAP,
        )
        save_scratch_reference(path, reference)
        made.touch()
    return path
