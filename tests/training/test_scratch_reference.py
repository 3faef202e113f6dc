"""The scratch reference is measured on real training, kept beside its checkpoint, read
back only for its supernet version; the ledger gathers it with the training and fit costs.

One network (the smallest, three epochs at most) keeps this module to seconds; the
architectures first use measures are the same code with other arguments.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.carbon.grid import grid_for
from ofa_fleet.carbon.meter import EnergyModel
from ofa_fleet.carbon.power import PowerModel
from ofa_fleet.carbon.scratch_reference import (
    ScratchReference,
    load_scratch_reference,
    save_scratch_reference,
    scratch_reference_path,
)
from ofa_fleet.carbon.supernet_ledger import SupernetLedger
from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import Checkpoint, load_checkpoint
from ofa_fleet.errors import CheckpointError, InvalidArgumentError
from ofa_fleet.predictors.accuracy import AccuracySample, fit_accuracy_predictor
from ofa_fleet.search.accuracy_source import predictor_path
from ofa_fleet.search.ledger_source import load_supernet_ledger
from ofa_fleet.subnet import materialize
from ofa_fleet.training.checkpoint_data import load_checkpoint_data
from ofa_fleet.training.config import PHASE_NAMES
from ofa_fleet.training.evaluate import top1_accuracy
from ofa_fleet.training.scratch_reference import measure_scratch_reference, reference_archs
from tests.cli_runner import ofa_fleet

MODEL = EnergyModel(PowerModel(10.0, "configured"), grid_for(g_per_kwh=500.0))
CAP = 3


@pytest.fixture(scope="module")
def loaded(checkpoint: Path) -> Checkpoint:
    return load_checkpoint(checkpoint)


@pytest.fixture(scope="module")
def splits(loaded: Checkpoint):
    return load_checkpoint_data(loaded)


@pytest.fixture(scope="module")
def reference(loaded: Checkpoint, splits) -> ScratchReference:
    arch = ArchConfig.min(loaded.space)
    return measure_scratch_reference(loaded, splits, archs=[arch], epoch_cap=CAP, model=MODEL)


def test_target_is_the_once_for_all_subnets_accuracy(reference, loaded, splits):
    arch = ArchConfig.min(loaded.space)
    subnet = materialize(loaded.supernet, arch, splits)
    target = top1_accuracy(subnet.net, splits.val, splits.normalization, arch.resolution)
    assert reference.archs == (str(arch),)
    assert reference.target_top1 == target > 0.1  # better than chance on ten classes
    assert reference.supernet_version == loaded.version


def test_training_stops_at_the_target_or_the_cap_and_is_metered(reference):
    (network,) = reference.networks
    assert 1 <= reference.epochs <= CAP
    if network["reached"]:
        assert reference.reached_top1 >= reference.target_top1
    else:
        assert reference.epochs == CAP and reference.reached_top1 < reference.target_top1
    cost = reference.cost_per_network
    assert cost.cpu_seconds > 0
    assert cost.joules == pytest.approx(cost.cpu_seconds * 10.0)
    assert cost.co2e_grams == pytest.approx(cost.joules / 3.6e6 * 500.0)
    assert reference.energy_model == MODEL.describe()


def test_sidecar_is_read_back_only_for_its_supernet_version(reference, tmp_path):
    ckpt = tmp_path / "supernet.ckpt"
    assert load_scratch_reference(ckpt, reference.supernet_version) is None
    written = save_scratch_reference(ckpt, reference)
    assert written == scratch_reference_path(ckpt) == tmp_path / "supernet.ckpt.scratch.json"
    assert [p.name for p in tmp_path.iterdir()] == [written.name]  # no temporary left
    assert load_scratch_reference(ckpt, reference.supernet_version) == reference
    assert load_scratch_reference(ckpt, "another0version") is None
    written.write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_scratch_reference(ckpt, reference.supernet_version)


def test_default_archs_are_the_middle_and_the_smallest(loaded):
    middle, smallest = reference_archs(loaded.space)
    assert smallest == ArchConfig.min(loaded.space)
    space = loaded.space
    assert middle.resolution == space.resolutions[len(space.resolutions) // 2]
    assert all(len(stage) == space.depths[len(space.depths) // 2] for stage in middle.stages)
    with pytest.raises(InvalidArgumentError, match="epoch cap"):
        measure_scratch_reference(loaded, None, epoch_cap=0)  # type: ignore[arg-type]


def test_ledger_gathers_training_fit_and_reference(checkpoint, loaded, reference, tmp_path):
    ckpt = tmp_path / "supernet.ckpt"
    shutil.copy(checkpoint, ckpt)
    bare = load_supernet_ledger(ckpt, loaded)
    assert list(bare.training) == list(PHASE_NAMES)  # the session run was metered
    assert bare.predictor_fit is None and bare.scratch is None
    assert bare.energy_model == loaded.figures.energy_model != {}
    assert bare.training_total.cpu_seconds == pytest.approx(
        sum(cost["cpu_seconds"] for cost in loaded.figures.energy.values())
    )

    samples = [AccuracySample(str(ArchConfig.min(loaded.space)), 0.5 + i / 100) for i in range(10)]
    predictor = fit_accuracy_predictor(loaded.space, loaded.version, samples, epochs=2)
    predictor.fit_cost = EnergyCost(3.0, 30.0, 0.004)
    predictor.energy_model = MODEL.describe()
    predictor.save(predictor_path(ckpt))
    save_scratch_reference(ckpt, reference)
    ledger = load_supernet_ledger(ckpt, loaded)
    assert ledger.predictor_fit == EnergyCost(3.0, 30.0, 0.004)
    assert ledger.scratch == reference
    assert ledger.fixed_total == ledger.training_total + EnergyCost(3.0, 30.0, 0.004)
    back = SupernetLedger.from_proto(ledger.to_proto())
    assert back.training == ledger.training and back.predictor_fit == ledger.predictor_fit

    other = fit_accuracy_predictor(loaded.space, "another0version", samples, epochs=2)
    other.fit_cost = EnergyCost(1.0, 1.0, 1.0)
    other.save(predictor_path(ckpt))
    save_scratch_reference(ckpt, dataclasses.replace(reference, supernet_version="another0version"))
    stale = load_supernet_ledger(ckpt, loaded)
    assert stale.predictor_fit is None and stale.scratch is None


def test_cli_measures_and_writes_the_sidecar(checkpoint, loaded, tmp_path):
    ckpt = tmp_path / "supernet.ckpt"
    shutil.copy(checkpoint, ckpt)
    args = ("carbon", "reference", "--checkpoint", str(ckpt), "--arch", "min")
    result = ofa_fleet(*args, "--epoch-cap", "1", "--json")
    summary = json.loads(result.stdout)
    assert summary["out"] == str(scratch_reference_path(ckpt))
    assert summary["epochs"] == 1 and summary["cpu_seconds_per_network"] > 0
    stored = load_scratch_reference(ckpt, loaded.version)
    assert stored is not None and stored.archs == (str(ArchConfig.min(loaded.space)),)
    assert summary["supernet_version"] == loaded.version

    bad = ofa_fleet(*args, "--epoch-cap", "0", check=False)
    assert bad.returncode == 2 and "--epoch-cap must be at least 1" in bad.stderr
    missing = ofa_fleet("carbon", "reference", "--checkpoint", str(tmp_path / "no"), check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_first_use_keeps_a_reference_measured_for_this_supernet(checkpoint, reference, tmp_path):
    from ofa_fleet.stack.supernet import ensure_scratch_reference

    ckpt = tmp_path / "supernet.ckpt"
    shutil.copy(checkpoint, ckpt)
    written = save_scratch_reference(ckpt, reference)
    before = written.read_bytes()
    assert ensure_scratch_reference(ckpt) == written
    assert written.read_bytes() == before  # not measured again
