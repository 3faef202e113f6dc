"""Ray tasks meter themselves: the wrapper and the per-call tally, without a cluster."""

from __future__ import annotations

import threading
import time

import pytest

from ofa_fleet.carbon.meter import EnergyModel
from ofa_fleet.search.task_cost import Metered, TaskTally, metered, process_energy_model


def spin(seconds: float) -> str:
    """Burn CPU for ``seconds`` of this process's CPU time."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return "done"


def test_a_metered_call_returns_its_value_with_the_cpu_it_drew():
    result = metered(spin)(0.05)
    assert result.value == "done"
    assert result.cpu_seconds >= 0.05
    assert result.joules > 0
    assert metered(spin).__name__ == "spin"  # Ray names the task after the wrapped function


def test_the_energy_model_is_built_once_per_process():
    assert process_energy_model() is process_energy_model()


def test_a_tally_adds_up_tasks_from_several_threads():
    tally = TaskTally()
    threads = [
        threading.Thread(target=lambda: [tally.add(Metered(None, 0.5, 2.0)) for _ in range(100)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tally.tasks == 400
    model = EnergyModel.from_environment()
    cost = tally.cost(model)
    assert cost.cpu_seconds == pytest.approx(200.0)
    assert cost.joules == pytest.approx(800.0)
    assert cost.co2e_grams == pytest.approx(model.grid.grams(800.0))
