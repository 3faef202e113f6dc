"""The byte-bounded LRU behind delivery's model cache."""

from __future__ import annotations

import pytest

from ofa_fleet.storage.lru import ByteLru


def test_the_least_recently_used_goes_first() -> None:
    cache = ByteLru(10)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # now b is the least recently used
    cache.put("c", b"cccc")
    assert ("a" in cache, "b" in cache, "c" in cache) == (True, False, True)
    assert (cache.size_bytes, len(cache)) == (8, 2)


def test_replacing_a_value_counts_its_new_size_only() -> None:
    cache = ByteLru(10)
    cache.put("a", b"aaaa")
    cache.put("a", b"aaaaaa")
    assert (cache.size_bytes, cache.get("a")) == (6, b"aaaaaa")


def test_a_value_larger_than_the_capacity_is_not_kept() -> None:
    cache = ByteLru(10)
    cache.put("a", b"aaaa")
    cache.put("big", b"x" * 11)
    assert cache.get("big") is None
    assert cache.get("a") == b"aaaa"  # and nothing was evicted for it


def test_capacity_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="capacity_bytes must be >= 0, got -1"):
        ByteLru(-1)
