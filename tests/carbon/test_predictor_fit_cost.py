"""The accuracy predictor file keeps what its fit cost; files from before that still load."""

from __future__ import annotations

import torch

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.space import cpu_space
from ofa_fleet.predictors.accuracy import (
    AccuracyPredictor,
    AccuracySample,
    fit_accuracy_predictor,
    sample_archs_for_fit,
)

SPACE = cpu_space()
MODEL = {"power": {"watts_per_core": 42.5, "source": "tdp-default"}, "grid": {"g_per_kwh": 480.0}}


def _fitted() -> AccuracyPredictor:
    archs = sample_archs_for_fit(SPACE, 20, seed=0)
    samples = [
        AccuracySample(str(a), 0.5 + 0.002 * a.resolution + 0.001 * len(a.blocks)) for a in archs
    ]
    return fit_accuracy_predictor(SPACE, "version1", samples, epochs=5)


def test_fit_cost_and_energy_model_survive_save_and_load(tmp_path):
    predictor = _fitted()
    assert predictor.fit_cost is None and predictor.energy_model is None
    predictor.fit_cost = EnergyCost(12.5, 531.25, 0.0708)
    predictor.energy_model = MODEL
    path = tmp_path / "supernet.ckpt.predictor"
    predictor.save(path)
    loaded = AccuracyPredictor.load(path)
    assert loaded.fit_cost == EnergyCost(12.5, 531.25, 0.0708)
    assert loaded.energy_model == MODEL


def test_unmetered_fit_loads_as_none(tmp_path):
    path = tmp_path / "p"
    _fitted().save(path)
    loaded = AccuracyPredictor.load(path)
    assert loaded.fit_cost is None and loaded.energy_model is None


def test_a_file_written_before_the_ledger_still_loads(tmp_path):
    predictor = _fitted()
    predictor.fit_cost = EnergyCost(1.0, 2.0, 3.0)
    path = tmp_path / "p"
    predictor.save(path)
    payload = torch.load(path, weights_only=True)
    del payload["fit_cost"], payload["energy_model"]
    torch.save(payload, path)
    loaded = AccuracyPredictor.load(path)
    assert loaded.fit_cost is None and loaded.energy_model is None
    assert loaded.supernet_version == "version1"
    arch = ArchConfig.max(SPACE)
    assert loaded.predict([arch]) == predictor.predict([arch])
