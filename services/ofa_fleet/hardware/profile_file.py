"""Profiles as files: YAML or JSON, in the shape the registry stores.

``latency_table`` may be inline or a path to the JSON ``profile-device`` wrote, relative
to the profile file, so a device's measurements can be attached without editing them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ofa_fleet.errors import InvalidArgumentError, NotFoundError
from ofa_fleet.hardware.latency_table import LatencyTable
from ofa_fleet.hardware.profile import HardwareProfile


def load_profile(path: Path) -> HardwareProfile:
    data = _read(path)
    if isinstance(data, dict) and isinstance(data.get("latency_table"), str):
        table_path = path.parent / data["latency_table"]
        data = {**data, "latency_table": load_latency_table(table_path).to_dict()}
    try:
        return HardwareProfile.from_dict(data, name_hint=path.name)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{path}: {exc}") from exc


def load_latency_table(path: Path) -> LatencyTable:
    data = _read(path)
    try:
        return LatencyTable.from_dict(data)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{path}: {exc}") from exc


def _read(path: Path) -> Any:
    if not path.is_file():
        raise NotFoundError(f"{path} does not exist")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from exc
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(f"{path}:{_yaml_problem(exc)}") from exc


def _yaml_problem(error: yaml.YAMLError) -> str:
    """ "LINE:COLUMN: not valid YAML: what", where the parser says where (1-based, as
    editors count); PyYAML's own text spans several lines and quotes the source."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    what = f"{context}, {problem}" if context else problem
    if mark is None:
        return f" not valid YAML: {what}"
    return f"{mark.line + 1}:{mark.column + 1}: not valid YAML: {what}"
