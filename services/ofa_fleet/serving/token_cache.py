"""Recently verified device and enrolment tokens, so a busy device is not looked up per call.

Every device call is authenticated; without a cache each heartbeat costs a database read
before its write. Entries expire after `ttl_seconds` and are dropped at once when this
replica deletes the device or fleet. Another replica's deletion is seen when the entry
expires: a deleted device may keep calling for up to `ttl_seconds` there, and its calls
then fail with NOT_FOUND on its own record anyway. Unknown tokens are never cached, so
guessing cannot fill the cache.
"""

from __future__ import annotations

from ofa_fleet.contract.tokens import digest
from ofa_fleet.serving.access import Principal
from ofa_fleet.storage.lru import Lru


class TokenCache:
    def __init__(self, ttl_seconds: float = 30.0, capacity: int = 100_000) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: Lru[str, Principal] = Lru(max_entries=capacity, ttl_seconds=ttl_seconds)

    def get(self, token: str) -> Principal | None:
        return self._entries.get(digest(token))

    def put(self, token: str, principal: Principal) -> None:
        self._entries.put(digest(token), principal)

    def forget(self, subject: str) -> None:
        """Drop every entry for a device id or fleet name (it was deleted here)."""
        self._entries.discard_where(lambda principal: principal.subject == subject)
