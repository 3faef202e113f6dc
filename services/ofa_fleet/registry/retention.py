"""How long the change feed holds a change: long enough for any watcher that is merely
restarting, short enough that device reports do not fill the database. Light on purpose:
the CLI reads the default while building its parser."""

from __future__ import annotations

from ofa_fleet.contract.fields import check_within

DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600.0  # a week
MIN_RETENTION_SECONDS = 60.0
MAX_RETENTION_SECONDS = 10 * 365 * 24 * 3600.0


def check_retention_seconds(seconds: float) -> float:
    hours = check_within(
        seconds / 3600,
        MIN_RETENTION_SECONDS / 3600,
        MAX_RETENTION_SECONDS / 3600,
        f"the change feed's retention must be {MIN_RETENTION_SECONDS / 3600:g} to "
        f"{MAX_RETENTION_SECONDS / 3600:g} hours",
    )
    return hours * 3600
