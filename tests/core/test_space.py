import pytest

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.complexity import complexity
from ofa_fleet.core.space import SearchSpace, StageSpec, make_divisible, mobilenet_v3_imagenet_space
from ofa_fleet.errors import InvalidArgumentError


def test_space_json_round_trip_keeps_fingerprint():
    space = mobilenet_v3_imagenet_space()
    again = SearchSpace.from_dict(space.to_dict())
    assert again == space
    assert again.fingerprint == space.fingerprint
    assert SearchSpace().fingerprint != space.fingerprint


def test_default_space_spans_at_least_5x_macs():
    space = SearchSpace()
    big = complexity(space, ArchConfig.max(space), 3, 10).macs
    small = complexity(space, ArchConfig.min(space), 3, 10).macs
    assert big / small >= 5


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"kernel_sizes": (3, 4)}, "odd"),
        ({"depths": (3, 2)}, "ascending"),
        ({"stages": ()}, "at least one stage"),
        ({"head_width": 0}, "head_width"),
    ],
)
def test_invalid_space_is_refused(kwargs, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment):
        SearchSpace(**kwargs)


def test_invalid_stage_and_unknown_fields_are_refused():
    with pytest.raises(InvalidArgumentError, match="stride"):
        StageSpec(24, 3)
    with pytest.raises(InvalidArgumentError, match="activation"):
        StageSpec(24, 1, "gelu")
    with pytest.raises(InvalidArgumentError, match="unknown search space fields"):
        SearchSpace.from_dict({"widths": [1]})


def test_make_divisible_rounds_to_multiples_without_losing_much():
    assert make_divisible(72, 8) == 72
    assert make_divisible(100, 8) == 104
    assert make_divisible(3, 8) == 8
    for value in range(8, 500):
        rounded = make_divisible(value, 8)
        assert rounded % 8 == 0
        assert rounded >= 0.9 * value
