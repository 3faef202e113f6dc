"""Alembic environment: runs on the connection `Database.migrate` hands over.

For a new revision, point `alembic` at a scratch database and autogenerate against
`tables.Base.metadata`, then review the result; the test suite fails while the migrated
schema and the tables disagree.
"""

from __future__ import annotations

from ofa_fleet.delivery.store.tables import Base
from ofa_fleet.storage.migrations import run_migrations

run_migrations(Base.metadata)
