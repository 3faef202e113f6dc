import json
import random

import numpy as np
import pytest

from ofa_fleet.core.arch import ArchConfig, BlockChoice, encoding_length, validate
from ofa_fleet.core.space import SearchSpace, mobilenet_v3_imagenet_space
from ofa_fleet.errors import InvalidArchError

SPACE = SearchSpace()


def test_canonical_string_round_trips_for_many_random_archs():
    rng = random.Random(1)
    for _ in range(200):
        arch = ArchConfig.sample(SPACE, rng)
        assert ArchConfig.parse(str(arch), SPACE) == arch
        assert ArchConfig.from_json(arch.to_json(), SPACE) == arch


def test_canonical_string_reads_as_documented():
    arch = ArchConfig.parse("r28_k7e6-k5e4_k3e3-k3e3_k5e6-k3e4_k7e3-k7e3-k7e3", SPACE)
    assert arch.resolution == 28
    assert arch.depths == (2, 2, 2, 3)
    assert arch.stages[0] == (BlockChoice(7, 6), BlockChoice(5, 4))


def test_max_and_min_are_the_extremes():
    big, small = ArchConfig.max(SPACE), ArchConfig.min(SPACE)
    assert str(big).startswith("r32_k7e6") and big.depths == (4, 4, 4, 4)
    assert str(small).startswith("r24_k3e3") and small.depths == (2, 2, 2, 2)


def test_sample_is_seeded_and_respects_restrictions():
    a = [str(ArchConfig.sample(SPACE, random.Random(5))) for _ in range(3)]
    assert len(set(a)) == 1
    rng = random.Random(0)
    for _ in range(50):
        arch = ArchConfig.sample(SPACE, rng, kernel_sizes=(3,), depths=(4,))
        assert all(b.kernel == 3 for b in arch.blocks)
        assert arch.depths == (4,) * SPACE.num_stages


def test_sample_covers_every_choice():
    rng = random.Random(0)
    archs = [ArchConfig.sample(SPACE, rng) for _ in range(300)]
    assert {b.kernel for a in archs for b in a.blocks} == set(SPACE.kernel_sizes)
    assert {b.expand for a in archs for b in a.blocks} == set(SPACE.expand_ratios)
    assert {d for a in archs for d in a.depths} == set(SPACE.depths)
    assert {a.resolution for a in archs} == set(SPACE.resolutions)


def test_encoding_has_fixed_length_and_distinguishes_archs():
    rng = random.Random(3)
    archs = [ArchConfig.sample(SPACE, rng) for _ in range(100)]
    codes = np.stack([a.encode(SPACE) for a in archs])
    assert codes.shape == (100, encoding_length(SPACE))
    unique_archs = {str(a) for a in archs}
    unique_codes = {c.tobytes() for c in codes}
    assert len(unique_codes) == len(unique_archs)
    # one kernel + one expand per active block, one depth per stage, one resolution
    for arch, code in zip(archs, codes, strict=True):
        assert code.sum() == 2 * len(arch.blocks) + SPACE.num_stages + 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("r30_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3", "resolution 30 is not in the search space"),
        ("r32_k4e3-k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3", "stage 1 block 1 kernel 4"),
        ("r32_k3e3-k3e5_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3", "stage 1 block 2 expand ratio 5"),
        ("r32_k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3", "stage 1 depth 1 is not allowed"),
        ("r32_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3", "arch has 3 stages"),
        ("k3e3-k3e3", "cannot parse arch"),
        ("r32_k3x3-k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3", "cannot parse block 'k3x3'"),
    ],
)
def test_invalid_arch_names_the_field_and_allowed_values(text, fragment):
    with pytest.raises(InvalidArchError, match=fragment) as info:
        ArchConfig.parse(text, SPACE)
    if "not allowed" in str(info.value) or "not in the search space" in str(info.value):
        assert "allowed: [" in str(info.value)


def test_arch_from_another_space_is_refused():
    imagenet = mobilenet_v3_imagenet_space()
    with pytest.raises(InvalidArchError):
        validate(ArchConfig.max(imagenet), SPACE)


def test_bad_json_is_an_invalid_arch_error():
    with pytest.raises(InvalidArchError, match="arch JSON"):
        ArchConfig.from_dict(json.loads('{"resolution": 32}'))


def test_arch_is_immutable_and_hashable():
    arch = ArchConfig.max(SPACE)
    with pytest.raises(AttributeError):
        arch.resolution = 24  # type: ignore[misc]
    assert len({arch, ArchConfig.max(SPACE)}) == 1
