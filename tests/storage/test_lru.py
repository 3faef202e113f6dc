"""The one LRU behind every server cache: its count and byte bounds, expiry and removal."""

from __future__ import annotations

import pytest

from ofa_fleet.storage.lru import Lru


def byte_lru(capacity: int) -> Lru[str, bytes]:
    return Lru(max_bytes=capacity, size_of=len)


def test_the_least_recently_used_goes_first() -> None:
    cache = byte_lru(10)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # now b is the least recently used
    cache.put("c", b"cccc")
    assert ("a" in cache, "b" in cache, "c" in cache) == (True, False, True)
    assert (cache.size_bytes, len(cache)) == (8, 2)


def test_membership_does_not_count_as_a_use() -> None:
    cache: Lru[str, int] = Lru(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert "a" in cache
    cache.put("c", 3)
    assert ("a" in cache, "b" in cache) == (False, True)


def test_replacing_a_value_counts_its_new_size_only() -> None:
    cache = byte_lru(10)
    cache.put("a", b"aaaa")
    cache.put("a", b"aaaaaa")
    assert (cache.size_bytes, cache.get("a")) == (6, b"aaaaaa")


def test_a_value_larger_than_the_capacity_is_not_kept() -> None:
    cache = byte_lru(10)
    cache.put("a", b"aaaa")
    cache.put("big", b"x" * 11)
    assert cache.get("big") is None
    assert cache.get("a") == b"aaaa"  # and nothing was evicted for it


def test_both_bounds_hold_at_once() -> None:
    cache: Lru[str, bytes] = Lru(max_entries=2, max_bytes=10, size_of=len)
    cache.put("a", b"a")
    cache.put("b", b"b")
    cache.put("c", b"c")  # over the count
    assert ("a" in cache, len(cache)) == (False, 2)
    cache.put("d", b"d" * 10)  # over the count and the bytes: b and c go
    assert (len(cache), cache.size_bytes, cache.get("d")) == (1, 10, b"d" * 10)


def test_entries_expire_after_their_ttl() -> None:
    now = [100.0]
    cache: Lru[str, int] = Lru(max_entries=10, ttl_seconds=30, clock=lambda: now[0])
    cache.put("a", 1)
    now[0] += 29.9
    assert cache.get("a") == 1
    now[0] += 0.2
    assert "a" not in cache and cache.get("a") is None and len(cache) == 0


def test_entries_can_be_dropped_by_key_or_by_value() -> None:
    cache: Lru[str, str] = Lru(max_entries=10)
    for key, owner in (("t1", "d-1"), ("t2", "d-1"), ("t3", "d-2")):
        cache.put(key, owner)
    cache.discard_where(lambda owner: owner == "d-1")
    cache.discard("missing")
    assert (len(cache), cache.get("t3")) == (1, "d-2")
    cache.clear()
    assert (len(cache), cache.size_bytes) == (0, 0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_bytes": -1, "size_of": len}, "max_bytes must be >= 0, got -1"),
        ({"max_entries": -1}, "max_entries must be >= 0, got -1"),
        ({"max_bytes": 10}, "max_bytes and size_of go together"),
        ({"ttl_seconds": 0}, "ttl_seconds must be positive"),
    ],
)
def test_bad_settings_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Lru(**settings)
