"""Alembic migrations of the registry's schema; `Database.migrate` applies them on start.

The version table and lock key are the ones the registry has always used, so databases
created before delivery kept its own history in the same database still migrate.
"""

from pathlib import Path

from ofa_fleet.storage.migrations import Migrations

REGISTRY_MIGRATIONS = Migrations(
    location=Path(__file__).resolve().parent,
    version_table="alembic_version",
    lock_key=0x0FA_F1EE7,
)
