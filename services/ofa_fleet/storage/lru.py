"""A least-recently-used cache of byte strings, bounded by their total length.

Bounded by bytes rather than entries because what it holds (model files) ranges from
kilobytes to hundreds of megabytes: a count bound would be either useless or a way to run
out of memory. Thread-safe: servers call it from many worker threads at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class ByteLru:
    """Values by key, the least recently used evicted first once `capacity_bytes` is full.

    A value longer than the whole capacity is never kept (it would evict everything and
    then itself). Values must be immutable (`bytes`): callers share them without copies.
    """

    def __init__(self, capacity_bytes: int) -> None:
        if capacity_bytes < 0:
            raise ValueError(f"capacity_bytes must be >= 0, got {capacity_bytes}")
        self.capacity_bytes = capacity_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.capacity_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._entries[key] = value
            self._size += len(value)
            while self._size > self.capacity_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted)

    @property
    def size_bytes(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._entries
