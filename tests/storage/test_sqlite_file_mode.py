"""A new SQLite database, and the WAL files SQLite makes beside it, are the owner's alone:
they hold token digests and every device's record."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from ofa_fleet.registry.migrations import REGISTRY_MIGRATIONS
from ofa_fleet.storage.database import Database, DatabaseUrl


def test_a_new_sqlite_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # a common umask, which would leave a plain new file 0644
    try:
        path = tmp_path / "nested" / "registry.db"
        database = Database(DatabaseUrl.parse(f"sqlite:///{path}"), REGISTRY_MIGRATIONS)
        database.migrate()
        with database.write() as session:  # WAL mode: the write leaves -wal and -shm files
            session.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
        files = sorted(p.name for p in path.parent.iterdir())
        assert {"registry.db", "registry.db-wal"} <= set(files)
        for name in files:
            mode = stat.S_IMODE((path.parent / name).stat().st_mode)
            assert mode == 0o600, f"{name} is {mode:o}"
        database.close()
    finally:
        os.umask(previous)
