"""Merging the latency tables several devices of one kind measured."""

from __future__ import annotations

import dataclasses

import pytest

from ofa_fleet.core.space import cpu_space
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.latency_merge import merge_tables
from ofa_fleet.hardware.latency_table import LatencyTable
from tests.predictors.test_latency import TINY, synthetic_table


def scaled(table: LatencyTable, factor: float, machine: str = "pi") -> LatencyTable:
    return dataclasses.replace(
        table,
        layers={k: v * factor for k, v in table.layers.items()},
        boundaries={k: v * factor for k, v in table.boundaries.items()},
        machine=machine,
    )


def test_entries_are_medians_and_a_busy_device_is_left_out():
    base = synthetic_table(TINY)
    tables = [scaled(base, f, f"pi-{i}") for i, f in enumerate((0.95, 1.0, 1.05, 1.1, 3.0))]
    merged = merge_tables(tables)
    assert (merged.devices, merged.dropped) == (4, 1)  # the 3x device measured while busy
    key = next(iter(base.layers))
    assert merged.table.layers[key] == pytest.approx(base.layers[key] * 1.025)
    assert merged.table.devices == 4 and merged.table.machine == "4 devices"
    assert LatencyTable.from_dict(merged.table.to_dict()) == merged.table


def test_two_devices_are_never_judged_and_one_device_is_its_own_median():
    base = synthetic_table(TINY)
    merged = merge_tables([scaled(base, 1.0), scaled(base, 3.0)])
    assert (merged.devices, merged.dropped) == (2, 0)
    key = next(iter(base.layers))
    assert merged.table.layers[key] == pytest.approx(base.layers[key] * 2.0)
    alone = merge_tables([base])
    assert alone.table.layers == base.layers and alone.table.devices == 1


def test_devices_within_a_quarter_of_each_other_are_all_kept():
    base = synthetic_table(TINY)
    merged = merge_tables([scaled(base, f) for f in (1.0, 1.0, 1.0, 1.2)])
    assert merged.dropped == 0


def test_a_merge_keeps_the_setting_its_tables_were_measured_at():
    basic = dataclasses.replace(synthetic_table(TINY), graph_optimization="basic")
    merged = merge_tables([basic, scaled(basic, 1.1), scaled(basic, 0.9)]).table
    assert merged.setting == basic.setting
    assert merged.devices == 3


def test_tables_of_another_space_thread_count_or_graph_optimization_are_refused():
    base = synthetic_table(TINY)
    with pytest.raises(InvalidArgumentError, match="cannot be merged"):
        merge_tables([base, dataclasses.replace(base, threads=2)])
    with pytest.raises(InvalidArgumentError, match="cannot be merged"):
        merge_tables([base, dataclasses.replace(base, graph_optimization="basic")])
    with pytest.raises(InvalidArgumentError, match="cannot be merged"):
        merge_tables([base, synthetic_table(cpu_space())])
    with pytest.raises(InvalidArgumentError, match="no latency tables"):
        merge_tables([])


@pytest.mark.parametrize(
    "change",
    [
        {"layers": {"x": float("inf")}},
        {"offset_ms": float("nan")},
        {"scale": float("inf")},
        {"devices": 0},
    ],
)
def test_a_table_with_an_impossible_figure_is_refused(change):
    with pytest.raises(InvalidArgumentError):
        dataclasses.replace(synthetic_table(TINY), **change)
