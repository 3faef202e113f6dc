"""`ofa-fleet migrate` brings a schema to this build, once, and a server started with
`--migrations check` refuses a schema that is not its own instead of changing it: how the
Helm chart runs them (a migration Job with DDL rights, servers without)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_runner import ofa_fleet
from tests.databases import database_url
from tests.server_process import OPERATOR_TOKEN, ServerProcess

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_server_that_only_checks_starts_once_its_schema_is_migrated(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFA_FLEET_OPERATOR_TOKEN", OPERATOR_TOKEN)
    with database_url(database, tmp_path) as url:
        refused = ofa_fleet(
            "serve", "registry", "--db", url, "--migrations", "check", "--port", "0", check=False
        )
        assert refused.returncode == 2
        error = refused.stderr.strip().splitlines()[-1]
        assert error.startswith("error: the database ") and "migration none" in error
        assert "ofa-fleet migrate registry --db URL" in error

        first = json.loads(ofa_fleet("migrate", "registry", "--db", url, "--json").stdout)
        assert first["from_revision"] == "" and first["to_revision"] == first["head_revision"]
        assert "secret" not in first["database"]  # the password is redacted
        again = json.loads(ofa_fleet("migrate", "registry", "--db", url, "--json").stdout)
        assert again["from_revision"] == again["to_revision"] == first["head_revision"]

        with ServerProcess("registry", "--db", url, "--migrations", "check") as server:
            assert server.address
        # The delivery's schema is its own: migrated apart, checked apart.
        refused = ofa_fleet(
            "serve",
            "delivery",
            "--db",
            url,
            "--migrations",
            "check",
            "--blobs",
            "database",
            "--signing-key",
            str(tmp_path / "signing.key"),
            "--port",
            "0",
            check=False,
        )
        assert refused.returncode == 2 and "ofa-fleet migrate delivery" in refused.stderr
        delivery = json.loads(ofa_fleet("migrate", "delivery", "--db", url, "--json").stdout)
        assert delivery["to_revision"] == delivery["head_revision"]


def test_migrate_needs_a_database() -> None:
    result = ofa_fleet("migrate", "registry", check=False)
    assert result.returncode == 2 and "--db is required" in result.stderr
