"""Finished specializations, kept so that identical requests are not searched twice.

The key is the supernet version, the profile's content hash and the search options: a
new supernet or an edited profile misses, a repeated request hits. Bounded by entries
and by model bytes; the least recently used entry goes first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ofa_fleet.search.specializer import Specialization

MAX_ENTRIES = 256
MAX_BYTES = 512 * 1024 * 1024


def cache_key(supernet_version: str, profile_key: str, options: dict[str, Any]) -> str:
    text = json.dumps([supernet_version, profile_key, options], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Specialization] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Specialization | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return dataclasses.replace(entry, from_cache=True)

    def put(self, key: str, result: Specialization) -> None:
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous.onnx_bytes)
            self._entries[key] = result
            self._bytes += len(result.onnx_bytes)
            while self._entries and (
                len(self._entries) > self.max_entries or self._bytes > self.max_bytes
            ):
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped.onnx_bytes)

    def __len__(self) -> int:
        return len(self._entries)
