"""Alembic environment: runs on the connection `database.migrate` hands over.

For a new revision, point `alembic` at a scratch database and autogenerate against
`tables.Base.metadata`, then review the result; the test suite fails while the migrated
schema and the tables disagree.
"""

from __future__ import annotations

from alembic import context

from ofa_fleet.registry.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
