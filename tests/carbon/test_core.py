"""The carbon core: power models, grids, RAPL counters and the meter."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest

from ofa_fleet.carbon.convert import cost_from_proto, cost_to_proto
from ofa_fleet.carbon.cost import EnergyCost, total
from ofa_fleet.carbon.grid import REGIONS, grid_for, grid_from_environment
from ofa_fleet.carbon.meter import EnergyModel
from ofa_fleet.carbon.power import (
    CONFIGURED,
    CONFIGURED_TDP,
    DEFAULT_TDP_WATTS,
    RAPL,
    TDP_DEFAULT,
    PowerModel,
    detect_power_model,
)
from ofa_fleet.carbon.rapl import RaplCounters, busy_cpu_seconds
from ofa_fleet.errors import InvalidArgumentError


def spin(seconds: float) -> None:
    """Burn CPU on the calling thread for about ``seconds`` of its own CPU time."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        sum(i * i for i in range(1000))


def test_costs_add_scale_and_round_trip() -> None:
    a, b = EnergyCost(1.0, 40.0, 0.005), EnergyCost(2.0, 60.0, 0.01)
    assert a + b == EnergyCost(3.0, 100.0, 0.015)
    assert total([a, b, a]).joules == 140.0
    assert a.scaled(2).cpu_seconds == 2.0
    assert EnergyCost(0, 3_600_000.0, 0).kwh == 1.0
    assert EnergyCost.from_dict(a.to_dict()) == a
    assert cost_from_proto(cost_to_proto(b)) == b


def test_power_model_order_configured_then_tdp_then_rapl_then_default(tmp_path: Path) -> None:
    assert detect_power_model({"OFA_FLEET_CPU_WATTS_PER_CORE": "7.5"}, 4).source == CONFIGURED
    tdp = detect_power_model({"OFA_FLEET_CPU_TDP_WATTS": "120"}, 4, probe_rapl=False)
    assert (tdp.source, tdp.watts_per_core) == (CONFIGURED_TDP, 30.0)
    fallback = detect_power_model({}, 2, probe_rapl=False)
    assert (fallback.source, fallback.watts_per_core) == (TDP_DEFAULT, DEFAULT_TDP_WATTS / 2)
    counters = fake_rapl(tmp_path, [1_000_000])
    assert detect_power_model({}, 2, rapl=counters).source == RAPL


@pytest.mark.parametrize("value", ["-1", "0", "abc", "20000"])
def test_power_model_rejects_nonsense(value: str) -> None:
    with pytest.raises(InvalidArgumentError, match="OFA_FLEET_CPU_WATTS_PER_CORE"):
        detect_power_model({"OFA_FLEET_CPU_WATTS_PER_CORE": value}, 2)


def test_grid_regions_figures_and_errors() -> None:
    assert grid_for().region == "world"
    assert grid_for("FR").g_per_kwh == REGIONS["fr"]
    assert grid_for("fr", 100.0).region == "configured"
    # 1 kWh on a 400 g/kWh grid is 400 g.
    assert grid_for(g_per_kwh=400.0).grams(3_600_000.0) == pytest.approx(400.0)
    with pytest.raises(InvalidArgumentError, match="unknown grid region 'atlantis'"):
        grid_for("atlantis")
    with pytest.raises(InvalidArgumentError, match="0-2000"):
        grid_for(g_per_kwh=-5.0)
    env = {"OFA_FLEET_GRID_REGION": "se", "OFA_FLEET_GRID_G_PER_KWH": ""}
    assert grid_from_environment(env).g_per_kwh == REGIONS["se"]
    with pytest.raises(InvalidArgumentError, match="must be a number"):
        grid_from_environment({"OFA_FLEET_GRID_G_PER_KWH": "lots"})


def fake_rapl(root: Path, values: list[int], max_range: int = 2**32) -> RaplCounters:
    """Package counters laid out as the kernel does, under ``root``."""
    for index, value in enumerate(values):
        domain = root / f"intel-rapl:{index}"
        domain.mkdir(parents=True, exist_ok=True)
        (domain / "energy_uj").write_text(f"{value}\n")
        (domain / "max_energy_range_uj").write_text(f"{max_range}\n")
        sub = root / f"intel-rapl:{index}:0"  # a sub-domain (core), counted in its package
        sub.mkdir(exist_ok=True)
        (sub / "energy_uj").write_text("5\n")
        (sub / "max_energy_range_uj").write_text(f"{max_range}\n")
    counters = RaplCounters.discover(root)
    assert counters is not None
    return counters


def test_rapl_reads_packages_only_and_survives_a_wrap(tmp_path: Path) -> None:
    counters = fake_rapl(tmp_path, [1_000_000, 2_000_000], max_range=10_000_000)
    assert [d.path.name for d in counters.domains] == ["intel-rapl:0", "intel-rapl:1"]
    before = counters.read()
    assert before == [1_000_000, 2_000_000]
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("3000000\n")
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("500000\n")  # wrapped at 10 J
    # 2 J on package 0; 8 J + 0.5 J on package 1.
    assert counters.joules_between(before, counters.read()) == pytest.approx(10.5)


def test_rapl_absent_or_unreadable_is_none(tmp_path: Path) -> None:
    assert RaplCounters.discover(tmp_path / "missing") is None
    (tmp_path / "intel-rapl:0").mkdir()  # no counter files: a locked-down kernel
    assert RaplCounters.discover(tmp_path) is None


def test_busy_cpu_seconds_counts_everything_but_idle(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal
    stat.write_text("cpu  100 0 50 1000 30 0 10 0 0 0\ncpu0 1 2 3 4\n")
    assert busy_cpu_seconds(stat) == pytest.approx(1.6)
    assert busy_cpu_seconds(tmp_path / "none") is None
    assert (busy_cpu_seconds() or 0) > 0  # this machine's own


def test_meter_charges_cpu_seconds_times_watts_and_the_grid() -> None:
    model = EnergyModel(PowerModel(10.0, CONFIGURED), grid_for(g_per_kwh=360.0))
    with model.meter() as reading:
        spin(0.2)
    assert reading.cpu_seconds >= 0.2
    assert reading.joules == pytest.approx(reading.cpu_seconds * 10.0)
    assert reading.cost.co2e_grams == pytest.approx(reading.joules / 3_600_000.0 * 360.0)
    assert model.cost_of(2.0).joules == 20.0
    assert model.cost_of(2.0, joules=5.0).co2e_grams == pytest.approx(5.0 / 10_000.0)


def test_thread_scope_leaves_out_other_threads_work() -> None:
    model = EnergyModel(PowerModel(1.0, CONFIGURED), grid_for())
    busy = threading.Thread(target=spin, args=(0.4,))
    with model.meter("process") as whole, model.meter("thread") as mine:
        busy.start()
        spin(0.1)
        busy.join()
    assert whole.cpu_seconds >= 0.45
    assert 0.1 <= mine.cpu_seconds < 0.3


def test_meter_with_rapl_charges_the_package_by_cpu_share(tmp_path: Path) -> None:
    counters = fake_rapl(tmp_path, [0])
    model = EnergyModel(PowerModel(1.0, RAPL, counters), grid_for(g_per_kwh=0.0))
    with model.meter() as reading:
        spin(0.1)
        # The package drew 50 J meanwhile; this process's share of the busy seconds is
        # at most 1, so it is charged at most 50 J and more than nothing.
        (tmp_path / "intel-rapl:0" / "energy_uj").write_text("50000000\n")
    assert 0 < reading.joules <= 50.0
    assert math.isclose(reading.cost.co2e_grams, 0.0)
