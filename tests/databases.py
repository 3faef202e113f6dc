"""Real databases for tests: an SQLite file always, PostgreSQL where a server answers.

PostgreSQL tests use this machine's server (127.0.0.1:5432, database `test`, or the URL in
OFA_FLEET_TEST_POSTGRES), each in a schema of its own that is dropped afterwards. Without
a server they skip and say why; under CI=true a missing server fails them instead, because
CI must not pass by skipping half the suite.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

POSTGRES_URL = os.environ.get(
    "OFA_FLEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def require_postgres() -> None:
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = f"no PostgreSQL at {POSTGRES_URL} ({str(exc).strip().splitlines()[0]})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(f"{reason}; set OFA_FLEET_TEST_POSTGRES to run these tests")


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose every table lands in a fresh schema, dropped on exit."""
    require_postgres()
    schema = f"t_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextlib.contextmanager
def database_url(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'registry.db'}"
    else:
        with postgres_schema() as url:
            yield url
