"""Smoke test of bench/train_throughput.py: our side only, no network, no peer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ofa_fleet.core.arch import ArchConfig, BlockChoice
from ofa_fleet.core.space import SearchSpace, mobilenet_v3_imagenet_space

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "train_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_train_throughput", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.mark.parametrize("subnet", ["max", "random"])
def test_our_side_measures_positive_throughput(bench, subnet):
    measurement = bench.measure_ours(
        SearchSpace(), subnet, batch=16, steps=1, repeats=2, warmup=1, channels_last=True
    )
    assert measurement.images_per_s > 0
    assert len(measurement.repeats) == 2
    assert all(rate > 0 for rate in measurement.repeats)


def test_same_space_is_ofa_layout_at_32_with_a_fresh_fingerprint(bench):
    space = bench.same_space_at_32()
    base = mobilenet_v3_imagenet_space()
    assert space.resolutions == (32,)
    assert space.stages == base.stages
    assert space.fingerprint == SearchSpace.from_dict(space.to_dict()).fingerprint
    assert space.fingerprint != base.fingerprint


def test_peer_setting_pads_inactive_slots_with_the_stage_last_block(bench):
    arch = ArchConfig(
        32,
        (
            (BlockChoice(7, 6), BlockChoice(3, 4)),
            (BlockChoice(5, 3), BlockChoice(5, 4), BlockChoice(3, 6), BlockChoice(7, 3)),
        ),
    )
    setting = bench.peer_setting(arch, max_depth=4)
    assert setting == {
        "ks": [7, 3, 3, 3, 5, 5, 3, 7],
        "e": [6, 4, 4, 4, 3, 4, 6, 3],
        "d": [2, 4],
    }


def test_torchvision_stand_ins_leave_no_trace(bench):
    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("a real torchvision is installed; the stand-ins are not used")
    with bench.torchvision_stand_ins() as used:
        assert used
        import torchvision.transforms.functional  # noqa: F401
        from torchvision import transforms

        with pytest.raises(RuntimeError, match="stand-in"):
            transforms.RandomResizedCrop(32)
    assert not any(name.split(".")[0] == "torchvision" for name in sys.modules)


def test_subnet_sequence_is_the_same_work_for_every_variant(bench):
    space = SearchSpace()
    assert bench.subnet_sequence(space, "max", 5, seed=0) == [ArchConfig.max(space)]
    first = bench.subnet_sequence(space, "random", 5, seed=0)
    assert first == bench.subnet_sequence(space, "random", 5, seed=0)
    assert len(first) == 5
    assert all(arch.resolution == 32 for arch in first)
    with pytest.raises(ValueError, match="subnet"):
        bench.subnet_sequence(space, "min", 5, seed=0)
