"""Recently verified device and enrolment tokens, so a busy device is not looked up per call.

Every device call is authenticated; without a cache each heartbeat costs a database read
before its write. Entries are dropped at once when the device or fleet is deleted: by
this replica in the call, by every other replica (registry or delivery) as the registry's
change feed tells it (`registry.service`, `delivery.serve.revocations`), and all at once
when that feed breaks. Entries also expire after `ttl_seconds`, a last bound on what a
feed could miss without breaking. That bound is five minutes, not seconds, because it
must outlast a device's heartbeat interval (30 s by default) for the cache to help at
all: with 30 s, each of 10,000 devices beating every 30 s found its token expired at
every beat, and the registry spent a database lookup per heartbeat, and delivery a
registry call per device whenever a fleet opened its watches again
(``bench/fleet_load.py``). Unknown tokens are never cached, so guessing cannot fill it.
"""

from __future__ import annotations

from ofa_fleet.contract.tokens import digest
from ofa_fleet.serving.access import Principal
from ofa_fleet.storage.lru import Lru

TTL_SECONDS = 300.0


class TokenCache:
    def __init__(self, ttl_seconds: float = TTL_SECONDS, capacity: int = 100_000) -> None:
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
