"""Recently verified device and enrolment tokens, so a busy device is not looked up per call.

Every device call is authenticated; without a cache each heartbeat costs a database read
before its write. Entries expire after `ttl_seconds` and are dropped at once when the
device or fleet is deleted: by this replica in the call, by every other replica (registry
or delivery) as the registry's change feed tells it (`registry.service`,
`delivery.serve.revocations`); the expiry bounds what a feed that is down would miss.
Unknown tokens are never cached, so guessing cannot fill the cache.
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

    def clear(self) -> None:
        self._entries.clear()

    def forget(self, subject: str) -> None:
        """Drop every entry for a device id or fleet name (it was deleted here)."""
        self._entries.discard_where(lambda principal: principal.subject == subject)
