"""The one least-recently-used cache: bounded by entries, by bytes, or both, with an optional TTL.

Every cache in the servers is one of these (delivery's model bytes, search's finished
specializations and its per-profile predictors, the token caches), so eviction, expiry
and locking are written once. A byte bound is for values whose sizes range from
kilobytes to hundreds of megabytes (model files): a count bound alone would be either
useless or a way to run out of memory. Thread-safe: servers call it from many threads.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """Values by key; the least recently used goes first once a bound is exceeded.

    ``max_bytes`` counts ``size_of(value)`` (required with it). A value larger than the
    whole byte bound is never kept: it would evict everything and then itself. With
    ``ttl_seconds`` an entry expires that long after it was put, on ``clock`` (monotonic).
    Values are shared, not copied: store immutable ones.
    """

    def __init__(
        self,
        *,
        max_entries: int | None = None,
        max_bytes: int | None = None,
        size_of: Callable[[V], int] | None = None,
        ttl_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, bound in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if bound is not None and bound < 0:
                raise ValueError(f"{name} must be >= 0, got {bound}")
        if (max_bytes is None) != (size_of is None):
            raise ValueError("max_bytes and size_of go together")
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self._size_of = size_of
        self._clock = clock
        self._entries: OrderedDict[K, tuple[V, int, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            value, _, expires = entry
            if expires < self._clock():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        size = self._size_of(value) if self._size_of is not None else 0
        if self.max_bytes is not None and size > self.max_bytes:
            return
        expires = self._clock() + self.ttl_seconds if self.ttl_seconds else float("inf")
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (value, size, expires)
            self._bytes += size
            while self._entries and self._over_bounds():
                self._drop(next(iter(self._entries)))

    def discard(self, key: K) -> None:
        with self._lock:
            if key in self._entries:
                self._drop(key)

    def discard_where(self, predicate: Callable[[V], bool]) -> None:
        """Drop every entry whose value matches (a deleted device's tokens, say)."""
        with self._lock:
            for key in [k for k, (v, _, _) in self._entries.items() if predicate(v)]:
                self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        """Whether `key` holds a live entry; unlike `get`, it leaves the order alone."""
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and entry[2] >= self._clock()

    def _over_bounds(self) -> bool:
        return (self.max_entries is not None and len(self._entries) > self.max_entries) or (
            self.max_bytes is not None and self._bytes > self.max_bytes
        )

    def _drop(self, key: K) -> None:
        _, size, _ = self._entries.pop(key)
        self._bytes -= size
