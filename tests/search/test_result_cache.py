"""The result cache: keyed by supernet, profile and options; bounded; marks hits."""

from __future__ import annotations

import dataclasses

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.search.candidates import Candidate
from ofa_fleet.search.result_cache import ResultCache, cache_key
from ofa_fleet.search.specializer import Specialization
from tests.search.landscape import SPACE


def result(size: int, name: str = "p") -> Specialization:
    arch = ArchConfig.min(SPACE)
    candidate = Candidate(arch, 0.9, 1.0, size, 10, 10)
    return Specialization(
        profile_name=name,
        supernet_version="v",
        arch=arch,
        predicted=candidate,
        latency_source="analytic",
        measured_top1=0.9,
        measured_latency_ms=None,
        onnx_bytes=b"x" * size,
        sha256="0" * 64,
        max_abs_diff=0.0,
        front=(candidate,),
        reranked=(),
        statistics={},
    )


def test_key_changes_with_supernet_profile_and_options():
    base = cache_key("v1", "p", {"seed": 0})
    assert base == cache_key("v1", "p", {"seed": 0})
    assert len({base, cache_key("v2", "p", {"seed": 0}), cache_key("v1", "q", {"seed": 0}),
                cache_key("v1", "p", {"seed": 1})}) == 4  # fmt: skip


def test_hits_are_marked_and_the_stored_entry_is_untouched():
    cache = ResultCache()
    cache.put("k", result(10))
    hit = cache.get("k")
    assert hit is not None and hit.from_cache
    assert cache.get("missing") is None
    assert not dataclasses.replace(hit, from_cache=False).from_cache


def test_least_recently_used_goes_first_by_count_and_by_bytes():
    cache = ResultCache(max_entries=2, max_bytes=100)
    cache.put("a", result(10))
    cache.put("b", result(10))
    cache.get("a")
    cache.put("c", result(10))
    assert cache.get("b") is None and cache.get("a") is not None
    cache.put("big", result(95))
    assert len(cache) == 1 and cache.get("big") is not None
    cache.put("big", result(20))
    cache.put("d", result(20))
    assert len(cache) == 2
