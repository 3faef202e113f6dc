"""Alembic migrations of the registry's schema; `database.migrate` applies them on start."""
