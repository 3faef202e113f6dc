"""One agent per state directory (`STATE/agent.lock`, see `storage.directory_lock`)."""

from __future__ import annotations

from pathlib import Path

from ofa_fleet.storage.directory_lock import DirectoryLock

LOCK_NAME = "agent.lock"


def state_lock(state_dir: Path) -> DirectoryLock:
    """The agent's hold on its state directory; two agents on one would enrol twice,
    append the same download from two streams and remove each other's temporary files."""
    return DirectoryLock(
        state_dir,
        LOCK_NAME,
        "agent",
        "one agent per state directory; stop it or give this one another --state",
    )
