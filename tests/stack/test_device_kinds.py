"""The closed-loop demo's device kinds: budgets placed on this machine's own timings,
profiles that ask their devices for tables, written once per workdir."""

from __future__ import annotations

import json
from pathlib import Path

from ofa_fleet.core.space import cpu_space
from ofa_fleet.hardware.profile_file import load_profile
from ofa_fleet.stack.device_kinds import KINDS, DeviceKind, calibrate, ensure_kind_profiles


def test_a_budget_sits_where_its_kind_says_between_the_smallest_and_largest_subnet():
    space = cpu_space()
    low = calibrate(DeviceKind("k", "all", 0.0), space, 3, 10)
    assert 0 < low.smallest_ms <= low.largest_ms
    assert low.budget_ms == low.smallest_ms
    middle = calibrate(DeviceKind("k", "all", 0.5), space, 3, 10)
    assert middle.smallest_ms < middle.budget_ms < middle.largest_ms


def test_kinds_are_profiles_of_their_own_level_asking_for_tables_and_kept(tmp_path: Path):
    folder = tmp_path / "profiles"
    made = ensure_kind_profiles(folder, cpu_space(), 3, 10)
    assert set(made) == {k.name for k in KINDS}
    for kind in KINDS:
        calibration = made[kind.name]
        assert calibration is not None
        profile = load_profile(folder / f"{kind.name}.json")
        assert profile.measure_on_devices
        assert profile.runtime.graph_optimization == kind.graph_optimization
        assert profile.runtime.threads == 1
        assert profile.constraints.latency_budget_ms == calibration.budget_ms
    # The tight kind is the same hardware as the optimized one, held to less.
    budgets = {k: c.budget_ms for k, c in made.items() if c is not None}
    assert budgets["sim-optimized-tight"] < budgets["sim-optimized"]
    # A rerun keeps the files (and so the budgets) it finds.
    before = {p.name: p.read_text() for p in folder.iterdir()}
    again = ensure_kind_profiles(folder, cpu_space(), 3, 10)
    assert set(again.values()) == {None}
    assert {p.name: p.read_text() for p in folder.iterdir()} == before
    assert all(json.loads(text)["name"] for text in before.values())
