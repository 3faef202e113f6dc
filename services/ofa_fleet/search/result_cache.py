"""Finished specializations, kept so that identical requests are not searched twice.

The key is the supernet version, the profile's content hash and the search options: a
new supernet or an edited profile misses, a repeated request hits. Bounded by entries
and by model bytes; the least recently used entry goes first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any

from ofa_fleet.storage.lru import Lru

if TYPE_CHECKING:
    from ofa_fleet.search.specializer import Specialization

MAX_ENTRIES = 256
MAX_BYTES = 512 * 1024 * 1024


def cache_key(supernet_version: str, profile_key: str, options: dict[str, Any]) -> str:
    text = json.dumps([supernet_version, profile_key, options], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self._entries: Lru[str, Specialization] = Lru(
            max_entries=max_entries,
            max_bytes=max_bytes,
            size_of=lambda result: len(result.onnx_bytes),
        )

    def get(self, key: str) -> Specialization | None:
        entry = self._entries.get(key)
        return None if entry is None else dataclasses.replace(entry, from_cache=True)

    def put(self, key: str, result: Specialization) -> None:
        self._entries.put(key, result)

    def __len__(self) -> int:
        return len(self._entries)
