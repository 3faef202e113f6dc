"""One Alembic history per service, so several services can share one database.

Each history has its own version table (where a database records how far that history
has run) and its own PostgreSQL advisory-lock key (so replicas of one service starting
together migrate once, without waiting on another service's migrations). Each history's
``env.py`` is one call to `run_migrations` with its own tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import MetaData

VERSION_TABLE = "version_table"
CONNECTION = "connection"


@dataclass(frozen=True)
class Migrations:
    """An Alembic history: its scripts, its version table and its migration lock.

    Attributes:
        location: the folder holding ``env.py`` and ``versions/``.
        version_table: the table recording the revision a database stands at; unique per
            history within one database.
        lock_key: the ``pg_advisory_lock`` key its migrations run under; unique per history.
    """

    location: Path
    version_table: str
    lock_key: int


def run_migrations(metadata: MetaData) -> None:
    """The body of an ``env.py``: migrate the connection `Database.migrate` hands over.

    Only the tables of `metadata` are compared (autogenerate) or touched, so another
    service's tables in the same database are never taken for ones to drop.
    """
    from alembic import context

    attributes = context.config.attributes
    context.configure(
        connection=attributes[CONNECTION],
        target_metadata=metadata,
        version_table=attributes[VERSION_TABLE],
        include_name=owned_by(metadata),
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def owned_by(metadata: MetaData) -> Callable[[str | None, str, object], bool]:
    """An Alembic ``include_name`` filter: tables of `metadata` only (every other name passes)."""
    tables = set(metadata.tables)

    def include_name(name: str | None, type_: str, _parent_names: object) -> bool:
        return type_ != "table" or name in tables

    return include_name
