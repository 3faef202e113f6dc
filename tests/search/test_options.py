"""Search options: defaults for zero fields, ranges checked, what the cache key holds."""

from __future__ import annotations

import pytest

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.search.convert import options_from_proto, options_to_proto
from ofa_fleet.search.specializer import SpecializeOptions
from ofa_fleet.v1 import search_pb2


def test_zero_fields_take_the_defaults_and_round_trip():
    options = options_from_proto(search_pb2.SearchOptions())
    assert options == SpecializeOptions()
    custom = SpecializeOptions(seed=3, population=20, generations=5, patience=2, top_k=1)
    assert options_from_proto(options_to_proto(custom)) == custom


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("population", 2, "population must be 4-1000"),
        ("max_generations", 5000, "max_generations must be 1-1000"),
        ("rerank_top_k", 99, "rerank_top_k must be 1-16"),
        ("patience", 4_000_000_000, "patience must be 1-1000"),
        ("seed", 2**64 - 1, "seed must be 0-2147483647"),
        ("seed", 2**31, "seed must be 0-2147483647"),
    ],
)
def test_out_of_range_options_name_the_field(field, value, message):
    with pytest.raises(InvalidArgumentError, match=message):
        options_from_proto(search_pb2.SearchOptions(**{field: value}))


def test_the_cache_key_ignores_only_skip_cache():
    assert SpecializeOptions(use_cache=False).cache_fields() == SpecializeOptions().cache_fields()
    assert SpecializeOptions(seed=1).cache_fields() != SpecializeOptions().cache_fields()
