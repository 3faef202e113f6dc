"""Recently verified device and enrolment tokens, so a busy device is not looked up per call.

Every device call is authenticated; without a cache each heartbeat costs a database read
before its write. Entries expire after `ttl_seconds` and are dropped at once when this
replica deletes the device or fleet. Another replica's deletion is seen when the entry
expires: a deleted device may keep calling for up to `ttl_seconds` there, and its calls
then fail with NOT_FOUND on its own record anyway. Unknown tokens are never cached, so
guessing cannot fill the cache.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from ofa_fleet.contract.tokens import digest
from ofa_fleet.serving.access import Principal


class TokenCache:
    def __init__(self, ttl_seconds: float = 30.0, capacity: int = 100_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def get(self, token: str) -> Principal | None:
        key = digest(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        principal, expires = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        return principal

    def put(self, token: str, principal: Principal) -> None:
        key = digest(token)
        self._entries[key] = (principal, time.monotonic() + self.ttl_seconds)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def forget(self, subject: str) -> None:
        """Drop every entry for a device id or fleet name (it was deleted here)."""
        stale = [key for key, (p, _) in self._entries.items() if p.subject == subject]
        for key in stale:
            del self._entries[key]
