"""Alembic migrations of delivery's schema; `Database.migrate` applies them on start.

Delivery keeps its own history (version table ``alembic_version_delivery``, its own lock
key) so it can share a database with the registry without either touching the other's
tables or revisions.
"""

from pathlib import Path

from ofa_fleet.storage.migrations import Migrations

DELIVERY_MIGRATIONS = Migrations(
    location=Path(__file__).resolve().parent,
    version_table="alembic_version_delivery",
    lock_key=0x0FA_DE11,
)
