"""google.longrunning.Operations as every server of ours serves it: who may call it, and
how long WaitOperation waits.

Delivery serves Respecialize's operations and search its searches (each its own
servicer, over its own records); what they share is here, so the two cannot drift.
"""

from __future__ import annotations

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.serving.access import AccessRule, Role, rules_for

SERVICE = "google.longrunning.Operations"
# WaitOperation waits at most this long (and never past the call's deadline).
MAX_WAIT_SECONDS = 300.0
METHODS = ("GetOperation", "ListOperations", "WaitOperation", "CancelOperation", "DeleteOperation")

# Operations are an operator's, like the calls that start them.
RULES = rules_for(SERVICE, {method: AccessRule.of(Role.OPERATOR) for method in METHODS})


def wait_seconds(timeout_seconds: float | None, remaining_seconds: float | None) -> float:
    """How long a WaitOperation may wait: its ``timeout`` (0-300 s; unset: 300), and at
    most until a second before the call's own deadline, so it answers (not done) before
    the caller gives up."""
    wait = MAX_WAIT_SECONDS
    if timeout_seconds is not None:
        if not 0 <= timeout_seconds <= MAX_WAIT_SECONDS:
            raise InvalidArgumentError(
                f"timeout must be 0-{MAX_WAIT_SECONDS:.0f} s, got {timeout_seconds:g} s",
                field="timeout",
            )
        wait = timeout_seconds
    if remaining_seconds is not None:
        wait = min(wait, max(0.0, remaining_seconds - 1.0))
    return wait
