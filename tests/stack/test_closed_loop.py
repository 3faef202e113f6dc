"""`ofa-fleet demo --closed-loop`: kinds that differ in speed here measure their own tables,
and each ends on a model chosen from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import load_checkpoint
from ofa_fleet.stack.device_kinds import KINDS
from tests.stack.test_demo import demo_json

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_every_kind_ends_on_a_model_chosen_from_its_devices_tables(
    stack_checkpoint: Path, tmp_path: Path
) -> None:
    loop = demo_json(
        tmp_path,
        stack_checkpoint,
        *("--closed-loop", "--devices-per-kind", "1", "--deadline-seconds", "500"),
    )
    space = load_checkpoint(stack_checkpoint).space
    assert loop["settled"] and loop["errors"] == {}, _story(loop)
    assert loop["devices"] == len(KINDS)
    kinds = {k["kind"]: k for k in loop["kinds"]}
    assert set(kinds) == {k.name for k in KINDS}
    for kind in KINDS:
        row = kinds[kind.name]
        assert row["graph_optimization"] == kind.graph_optimization
        assert row["state"] == "current"
        calibration = row["calibration"]
        assert calibration["smallest_ms"] <= row["budget_ms"] <= calibration["largest_ms"]
        # Its device measured its table, and the model it runs was chosen from it.
        assert row["table_devices"] == 1
        after = row["after"]
        assert after["model"]["latency_source"] in ("lut", "calibrated")
        assert after["model"]["predicted_latency_ms"] <= row["budget_ms"]
        assert len(after["measured_ms"]) == 1 and after["measured_ms"][0] > 0
        ArchConfig.parse(after["model"]["arch"], space)
        assert row["seconds_to_table_model"] is not None
    assert kinds["sim-optimized-tight"]["budget_ms"] < kinds["sim-optimized"]["budget_ms"]


def _story(loop: dict[str, Any]) -> str:
    """What each kind went through, for a loop that did not settle."""
    lines = [
        f"settled {loop['settled']} after {loop['seconds_to_settle']} s, errors {loop['errors']}"
    ]
    for kind in loop["kinds"]:
        models = [
            (
                m["profile_revision"],
                m["latency_source"],
                m["predicted_latency_ms"],
                m["seen_after_seconds"],
            )
            for m in kind["models"]
        ]
        lines.append(
            f"{kind['kind']}: {kind['state']}, budget {kind['budget_ms']} ms, tables "
            f"{kind['table_devices']}, measured after {kind['after']['measured_ms']}, "
            f"models (revision, source, predicted ms, seen at s) {models}"
        )
    return "\n".join(lines)
