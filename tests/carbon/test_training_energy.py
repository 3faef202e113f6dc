"""Training meters every phase into the checkpoint's figures, across resumes."""

from __future__ import annotations

import pytest
import torch

from ofa_fleet.carbon.grid import grid_for
from ofa_fleet.carbon.meter import EnergyModel
from ofa_fleet.carbon.power import PowerModel
from ofa_fleet.core.checkpoint import TrainingFigures, load_checkpoint
from ofa_fleet.training.config import PHASE_NAMES
from ofa_fleet.training.trainer import ProgressiveTrainer
from tests.training.test_trainer import CONFIG, TINY, StopAfter, mechanics_splits

# A configured model, so the joules and grams follow from the CPU seconds exactly.
MODEL = EnergyModel(PowerModel(10.0, "configured"), grid_for(g_per_kwh=500.0))


@pytest.fixture(scope="module")
def splits():
    return mechanics_splits()


def test_every_phase_is_metered_and_saved(splits, tmp_path):
    path = tmp_path / "s.ckpt"
    result = ProgressiveTrainer(splits, path, CONFIG, TINY, energy_model=MODEL).run()
    figures = load_checkpoint(path).figures
    assert list(figures.energy) == list(PHASE_NAMES)
    assert figures.energy == result.figures.energy
    assert figures.energy_model == MODEL.describe()
    for phase, cost in figures.energy.items():
        assert cost["cpu_seconds"] > 0, phase
        assert cost["joules"] == pytest.approx(cost["cpu_seconds"] * 10.0)
        assert cost["co2e_grams"] == pytest.approx(cost["joules"] / 3.6e6 * 500.0)
    # The meter covers validation and saving too, so it holds at least the training
    # loop's CPU seconds the figures always kept (same clock: this process).
    metered = sum(cost["cpu_seconds"] for cost in figures.energy.values())
    assert metered >= figures.cpu_seconds > 0


def test_energy_survives_a_resume(splits, tmp_path):
    path = tmp_path / "s.ckpt"
    with pytest.raises(KeyboardInterrupt):
        ProgressiveTrainer(splits, path, CONFIG, TINY, StopAfter(2), energy_model=MODEL).run()
    partial = load_checkpoint(path).figures
    assert list(partial.energy) == list(PHASE_NAMES[:2])
    ProgressiveTrainer.resume(splits, path, energy_model=MODEL).run()
    resumed = load_checkpoint(path).figures
    assert list(resumed.energy) == list(PHASE_NAMES)
    assert resumed.energy["full"] == partial.energy["full"]  # finished before the stop
    # The stopped run's last save was metered after it was written, so it went unbilled;
    # the resumed process bills only its own work.
    assert resumed.energy["kernel"] == partial.energy["kernel"]
    assert resumed.energy["depth"]["cpu_seconds"] > 0


def test_a_checkpoint_from_before_metering_loads_and_resumes(splits, tmp_path):
    path = tmp_path / "s.ckpt"
    with pytest.raises(KeyboardInterrupt):
        ProgressiveTrainer(splits, path, CONFIG, TINY, StopAfter(3), energy_model=MODEL).run()
    payload = torch.load(path, weights_only=True)
    del payload["figures"]["energy"], payload["figures"]["energy_model"]
    torch.save(payload, path)
    old = load_checkpoint(path).figures
    assert old.energy == {} and old.energy_model == {} and old.epochs == 3
    ProgressiveTrainer.resume(splits, path, energy_model=MODEL).run()
    figures = load_checkpoint(path).figures
    assert list(figures.energy) == [PHASE_NAMES[-1]]  # only what was metered
    assert figures.energy_model == MODEL.describe()


def test_figures_ignore_fields_they_do_not_know():
    figures = TrainingFigures.from_dict({"epochs": 2, "from_the_future": 1})
    assert figures.epochs == 2 and figures.energy == {}
