"""Optimistic concurrency: a write that names the revision it read applies only to it."""

from __future__ import annotations

from ofa_fleet.errors import ConflictError

REVISION_MISMATCH = "REVISION_MISMATCH"


def check_revision(kind: str, name: str, current: int, expected: int | None) -> None:
    """ABORTED (with both revisions as facts) when a write expected another revision."""
    if expected is not None and current != expected:
        raise ConflictError(
            f"{kind} {name!r} is at revision {current}, not the expected {expected}; get it "
            "again and reapply the change",
            reason=REVISION_MISMATCH,
            facts={"current_revision": str(current), "expected_revision": str(expected)},
        )
