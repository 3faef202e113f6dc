"""`ofa-fleet --version` names the installed release, as pyproject.toml sets it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ofa_fleet.cli.main import main

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_version_is_the_projects_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0
    version = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert capsys.readouterr().out.strip() == f"ofa-fleet {version}"
