"""Where a supernet's carbon ledger comes from: the files kept beside its checkpoint.

The checkpoint's figures hold training's energy per phase, the predictor file
(``CKPT.predictor``) the fit's, and ``CKPT.scratch.json`` the scratch reference; a part
measured for another supernet version, or never measured, is absent, never zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.carbon.scratch_reference import load_scratch_reference
from ofa_fleet.carbon.supernet_ledger import SupernetLedger
from ofa_fleet.core.checkpoint import Checkpoint
from ofa_fleet.predictors.accuracy import AccuracyPredictor
from ofa_fleet.search.accuracy_source import predictor_path


def load_supernet_ledger(checkpoint_path: Path, checkpoint: Checkpoint) -> SupernetLedger:
    """The ledger of the loaded ``checkpoint`` (whose file is ``checkpoint_path``).

    Reads the figures' per-phase energy, the predictor file beside it when it was fitted
    for this supernet version, and the scratch reference when measured for it.
    """
    checkpoint_path = Path(checkpoint_path)
    figures = checkpoint.figures
    training = {phase: EnergyCost.from_dict(cost) for phase, cost in figures.energy.items()}
    predictor_fit: EnergyCost | None = None
    predictor_model: dict[str, Any] = {}
    predictor_file = predictor_path(checkpoint_path)
    if predictor_file.is_file():
        predictor = AccuracyPredictor.load(predictor_file)
        if predictor.supernet_version == checkpoint.version:
            predictor_fit = predictor.fit_cost
            if predictor_fit is not None:
                predictor_model = dict(predictor.energy_model or {})
    scratch = load_scratch_reference(checkpoint_path, checkpoint.version)
    model = (
        dict(figures.energy_model)
        or predictor_model
        or (dict(scratch.energy_model) if scratch is not None else {})
    )
    return SupernetLedger(checkpoint.version, training, predictor_fit, scratch, model)
