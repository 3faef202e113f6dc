"""The chart rendered once per scenario of helm/ofa-fleet/ci, for every test module here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.chart import CI_VALUES, objects, render, values_file


@pytest.fixture(scope="module", params=CI_VALUES, ids=[path.name for path in CI_VALUES])
def scenario(request: pytest.FixtureRequest) -> tuple[Path, list[dict[str, Any]]]:
    """(values file, the objects it renders)."""
    return request.param, objects(render(values_file(request.param)))
