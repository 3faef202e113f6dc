"""Evolutionary search: feasible, reproducible, bounded, and better than chance."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.errors import CancelledError, InfeasibleProfileError, InvalidArgumentError
from ofa_fleet.search.candidates import Budget, Candidate, candidates, pareto_front
from ofa_fleet.search.evolution import EvolutionSearch, EvolutionSettings
from ofa_fleet.search.random_search import random_search
from tests.search.landscape import PROFILE, SPACE, Landscape

SMALL = EvolutionSettings(population=40, generations=30, patience=8)


def budget(latency_ms: float = 5.0, **changes: object) -> Budget:
    constraints = dataclasses.replace(PROFILE.constraints, latency_budget_ms=latency_ms, **changes)
    return Budget.of(constraints, SPACE)


def min_figures(resolution: int | None = None) -> Candidate:
    arch = ArchConfig.min(SPACE)
    if resolution is not None:
        arch = dataclasses.replace(arch, resolution=resolution)
    return candidates(Landscape()([arch]))[0]


def test_result_fits_the_budget_and_the_front_is_pareto_optimal():
    limit = budget(2.0, max_model_bytes=1_500_000)
    outcome = EvolutionSearch(SPACE, Landscape(), limit, SMALL).run()
    assert limit.admits(outcome.best)
    assert outcome.ranked[0] == outcome.best
    assert len(outcome.ranked) == SMALL.top_k
    assert all(limit.admits(c) for c in outcome.ranked)
    assert [c.top1 for c in outcome.ranked] == sorted(
        (c.top1 for c in outcome.ranked), reverse=True
    )
    front = outcome.front
    assert all(limit.fits_resources(c) for c in front)
    for faster, slower in itertools.pairwise(front):
        assert faster.latency_ms <= slower.latency_ms and faster.top1 < slower.top1
    assert outcome.best.top1 <= max(c.top1 for c in front if c.latency_ms <= 2.0)
    stats = outcome.statistics
    assert stats.evaluated >= SMALL.population and stats.feasible <= stats.evaluated
    assert stats.stop_reason in ("converged", "generations")


def test_same_seed_same_result_other_seed_other_path():
    limit = budget(2.0)
    first = EvolutionSearch(SPACE, Landscape(), limit, SMALL).run()
    again = EvolutionSearch(SPACE, Landscape(), limit, SMALL).run()
    other = EvolutionSearch(SPACE, Landscape(), limit, dataclasses.replace(SMALL, seed=7)).run()
    assert first.best == again.best and first.front == again.front
    assert first.statistics.evaluated == again.statistics.evaluated
    assert other.statistics.evaluated != first.statistics.evaluated or other.front != first.front


def test_evolution_beats_random_search_at_an_equal_budget():
    limit = budget(1.5)
    outcome = EvolutionSearch(SPACE, Landscape(), limit, EvolutionSettings()).run()
    evaluations = outcome.statistics.evaluated
    chance = [random_search(SPACE, Landscape(), limit, evaluations, seed=s).top1 for s in range(3)]
    assert outcome.best.top1 > max(chance)


def test_latency_out_of_reach_names_the_fastest_subnet():
    fastest = min_figures(SPACE.resolutions[0])
    with pytest.raises(InfeasibleProfileError) as error:
        EvolutionSearch(SPACE, Landscape(), budget(fastest.latency_ms * 0.9), SMALL).run()
    message = str(error.value)
    assert f"the fastest subnet needs {fastest.latency_ms:.3f} ms" in message
    assert "model size" not in message and "peak memory" not in message


def test_size_and_memory_out_of_reach_name_the_smallest_figures():
    smallest = min_figures(SPACE.resolutions[0])
    limit = budget(
        100.0,
        max_model_bytes=smallest.model_bytes - 1,
        max_peak_memory_bytes=smallest.peak_memory_bytes - 1,
    )
    with pytest.raises(InfeasibleProfileError) as error:
        EvolutionSearch(SPACE, Landscape(), limit, SMALL).run()
    message = str(error.value)
    assert f"the smallest subnet is {smallest.model_bytes} bytes" in message
    assert f"the leanest subnet needs {smallest.peak_memory_bytes} bytes" in message
    assert "latency" not in message


def test_an_unreachable_accuracy_floor_is_infeasible_and_says_how_close():
    with pytest.raises(InfeasibleProfileError, match=r"min_top1 0\.9990: the best predicted is"):
        EvolutionSearch(SPACE, Landscape(), budget(1.0, min_top1=0.999), SMALL).run()


def test_a_tight_budget_is_filled_from_mutants_of_what_fits():
    fastest = min_figures(SPACE.resolutions[0])
    landscape = Landscape()
    limit = budget(fastest.latency_ms * 1.15)
    outcome = EvolutionSearch(SPACE, landscape, limit, SMALL).run()
    assert limit.admits(outcome.best)
    assert outcome.best.top1 > fastest.top1
    # Bounded: seeding and every generation make a fixed number of scoring rounds at most.
    rounds_per_generation = SMALL.fill_rounds
    seeding_rounds = 1 + SMALL.fill_rounds + 4 * SMALL.fill_rounds
    assert landscape.calls <= seeding_rounds + SMALL.generations * 2 * rounds_per_generation


def test_a_fixed_resolution_is_respected_and_checked():
    outcome = EvolutionSearch(SPACE, Landscape(), budget(3.0, resolution=24), SMALL).run()
    assert {c.arch.resolution for c in outcome.front} == {24}
    assert outcome.best.arch.resolution == 24
    with pytest.raises(InvalidArgumentError, match=r"resolution 30 is not in the search space"):
        budget(3.0, resolution=30)


def test_stop_request_ends_the_search_with_cancelled():
    polls = []

    def stop() -> bool:
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(CancelledError):
        EvolutionSearch(SPACE, Landscape(), budget(2.0), SMALL, should_stop=stop).run()


def test_progress_reports_every_generation_with_a_best_that_never_worsens():
    events = []
    outcome = EvolutionSearch(SPACE, Landscape(), budget(2.0), SMALL, events.append).run()
    assert [e.generation for e in events] == list(range(outcome.statistics.generations + 1))
    bests = [e.best.top1 for e in events]
    assert bests == sorted(bests)
    assert events[-1].evaluated <= outcome.statistics.evaluated


def test_pareto_front_keeps_only_undominated_points():
    arch = ArchConfig.min(SPACE)

    def point(latency: float, top1: float) -> Candidate:
        return Candidate(arch, top1, latency, 1, 1, 1)

    points = [point(1, 0.5), point(2, 0.4), point(2, 0.6), point(3, 0.6), point(4, 0.9)]
    assert pareto_front(points) == [point(1, 0.5), point(2, 0.6), point(4, 0.9)]
    assert pareto_front([]) == []


@pytest.mark.parametrize(
    "changes",
    [{"population": 3}, {"generations": 0}, {"parent_ratio": 1.0}, {"mutate_prob": 0.0}],
)
def test_settings_out_of_range_are_rejected(changes):
    with pytest.raises(InvalidArgumentError):
        EvolutionSettings(**changes)
