"""Specialize on a real local Ray: figures, model, cache, failures, cancellation."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import load_checkpoint
from ofa_fleet.core.export import read_metadata
from ofa_fleet.errors import CancelledError, InfeasibleProfileError, InvalidArgumentError
from ofa_fleet.search.accuracy_source import predictor_path, resolve_accuracy_predictor
from ofa_fleet.search.candidates import Candidate, rerank_order
from ofa_fleet.search.specializer import Event, SpecializeOptions, Specializer
from tests.conftest import FIT_SAMPLES
from tests.search.conftest import example_profile
from tests.search.ray_processes import kill, ray_workers

pytestmark = pytest.mark.slow

FRESH = SpecializeOptions(use_cache=False)


def with_budget(profile, latency_ms):
    constraints = dataclasses.replace(profile.constraints, latency_budget_ms=latency_ms)
    return dataclasses.replace(profile, constraints=constraints)


@pytest.mark.parametrize("name", ["raspberry-pi-4", "raspberry-pi-3", "x86-gateway"])
def test_the_chosen_subnet_fits_and_ships_as_a_verified_model(
    specializer: Specializer, search_checkpoint: Path, name
):
    specializer_checkpoint = search_checkpoint
    profile = example_profile(name)
    events: list[Event] = []
    result = specializer.specialize(profile, FRESH, events.append)
    limits = profile.constraints
    predicted = result.predicted
    assert predicted.latency_ms <= limits.latency_budget_ms
    assert predicted.model_bytes <= limits.max_model_bytes
    assert predicted.peak_memory_bytes <= limits.max_peak_memory_bytes
    # The model file is what the size prediction describes (weights exact, graph estimated).
    assert abs(len(result.onnx_bytes) - predicted.model_bytes) / predicted.model_bytes < 0.05
    assert hashlib.sha256(result.onnx_bytes).hexdigest() == result.sha256
    assert result.max_abs_diff <= 1e-4
    assert read_metadata(result.onnx_bytes)["arch"] == str(result.arch)
    session = ort.InferenceSession(result.onnx_bytes, providers=["CPUExecutionProvider"])
    r = result.arch.resolution
    channels = load_checkpoint(specializer_checkpoint).supernet.in_channels
    (logits,) = session.run(None, {"input": np.zeros((2, channels, r, r), dtype=np.float32)})
    assert logits.shape == (2, 10)
    # Re-ranking measured every runner-up and kept the most accurate.
    assert len(result.reranked) == FRESH.top_k
    assert result.measured_top1 == max(r.measured_top1 for r in result.reranked)
    assert 0.5 < result.measured_top1 <= 1.0
    assert [e.stage for e in events][-2:] == ["rerank", "export"]
    generations = [e.generation for e in events if e.stage == "search"]
    assert generations == list(range(result.statistics["generations"] + 1))
    assert result.statistics["workers"] == 2


def test_reranking_exports_the_first_best_of_all_shares(specializer: Specializer):
    """Each re-rank task exports the best of its share; the model returned is the best of
    all, the first of equals, as one `max` over every candidate would choose."""
    space = specializer.space
    small, large = ArchConfig.min(space), ArchConfig.max(space)
    # Two slots: shares [small, large] and [small again, large]. The repeated archs measure
    # the same, so whichever is best has an equal later in the other share.
    candidates = [
        Candidate(arch, 1.0, latency, 1, 1, 1)
        for arch, latency in ((small, 2.0), (large, 5.0), (small, 2.0), (large, 5.0))
    ]
    result = specializer.workers.rerank(candidates, 0, lambda: False)
    measured = result.measured_top1
    assert measured[0] == measured[2] and measured[1] == measured[3]
    expected = max(
        range(len(candidates)),
        key=lambda i: rerank_order(measured[i], candidates[i].latency_ms),
    )
    assert result.best == expected < 2
    assert read_metadata(result.exported.onnx_bytes)["arch"] == str(candidates[expected].arch)
    assert hashlib.sha256(result.exported.onnx_bytes).hexdigest() == result.exported.sha256


def test_identical_requests_are_answered_from_the_cache(specializer: Specializer):
    profile = example_profile("raspberry-pi-4")
    options = SpecializeOptions(seed=11, top_k=2)
    first = specializer.specialize(profile, options)
    again = specializer.specialize(profile, options)
    assert not first.from_cache and again.from_cache
    assert again.sha256 == first.sha256 and again.arch == first.arch
    # The answer from the cache carries what the search that made it cost.
    assert again.cost == first.cost
    assert again.summary()["cost"] == first.cost.to_dict()
    other_budget = specializer.specialize(with_budget(profile, 3.0), options)
    assert not other_budget.from_cache
    assert not specializer.specialize(
        profile, dataclasses.replace(options, use_cache=False)
    ).from_cache


def test_a_specialization_costs_its_driver_thread_and_every_ray_task(specializer: Specializer):
    result = specializer.specialize(example_profile("raspberry-pi-4"), SpecializeOptions(seed=3))
    stats = result.statistics
    cost = result.cost
    # The evolution, then one re-rank task per worker slot (each exports its share's best),
    # each metered in its worker.
    assert stats["worker_tasks"] == 1 + min(stats["workers"], len(result.reranked))
    assert stats["worker_cpu_seconds"] > 0
    # Materializing, evaluating and exporting subnets dwarfs the driver's bookkeeping.
    assert cost.cpu_seconds > stats["driver_cpu_seconds"]
    assert cost.cpu_seconds == pytest.approx(
        stats["driver_cpu_seconds"] + stats["worker_cpu_seconds"], abs=1e-3
    )
    assert cost.joules > 0 and cost.co2e_grams > 0
    assert result.summary()["cost"] == cost.to_dict()


def test_an_infeasible_profile_fails_at_once_with_the_space_reach(specializer: Specializer):
    profile = with_budget(example_profile("raspberry-pi-3"), 0.01)
    with pytest.raises(InfeasibleProfileError, match=r"the fastest subnet needs [0-9.]+ ms"):
        specializer.specialize(profile, FRESH)


def test_a_search_survives_losing_its_workers_mid_task(specializer: Specializer):
    profile = example_profile("raspberry-pi-3")
    options = SpecializeOptions(seed=5, top_k=8, use_cache=False)
    reference = specializer.specialize(profile, options)
    reranking = threading.Event()
    outcome: dict[str, object] = {}

    def run() -> None:
        def on_event(event: Event) -> None:
            if event.stage == "rerank":
                reranking.set()

        try:
            outcome["result"] = specializer.specialize(profile, options, on_event)
        except Exception as error:  # reported by the assertion below
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    assert reranking.wait(timeout=120)
    killed: list[int] = []
    deadline = time.monotonic() + 30
    while not killed and time.monotonic() < deadline:
        busy = [pid for pid, name in ray_workers().items() if "rerank" in name]
        if busy:
            kill(list(ray_workers()))
            killed = busy
        time.sleep(0.01)
    thread.join(timeout=300)
    assert killed, "no worker was measuring when the search reached re-ranking"
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.arch == reference.arch
    assert result.measured_top1 == reference.measured_top1
    assert result.sha256 == reference.sha256
    assert not set(killed) & set(ray_workers())


def test_a_search_survives_losing_its_worker_mid_evolution(specializer: Specializer):
    """Ray reruns the evolution's generator task whole; the seed makes it the same."""
    profile = example_profile("raspberry-pi-4")
    options = SpecializeOptions(seed=9, population=300, use_cache=False)
    reference = specializer.specialize(profile, options)
    evolving = threading.Event()
    outcome: dict[str, object] = {}

    def run() -> None:
        def on_event(event: Event) -> None:
            if event.stage == "search" and event.generation >= 1:
                evolving.set()

        try:
            outcome["result"] = specializer.specialize(profile, options, on_event)
        except Exception as error:  # reported by the assertion below
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    assert evolving.wait(timeout=120)
    busy = [pid for pid, name in ray_workers().items() if "evolve" in name]
    kill(busy)
    thread.join(timeout=300)
    assert busy, "no worker was running the evolution after its first generation"
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.arch == reference.arch
    assert result.sha256 == reference.sha256
    assert not set(busy) & set(ray_workers())


def test_a_stopped_search_ends_and_leaves_no_work_on_ray(specializer: Specializer):
    slow = SpecializeOptions(population=1000, generations=1000, patience=1000, use_cache=False)
    started = threading.Event()

    def on_event(event: Event) -> None:
        if event.generation >= 1:
            started.set()

    with pytest.raises(CancelledError):
        specializer.specialize(example_profile(), slow, on_event, should_stop=started.is_set)
    deadline = time.monotonic() + 30
    while any("evolve" in name for name in ray_workers().values()):
        assert time.monotonic() < deadline, "the evolution still runs after cancellation"
        time.sleep(0.1)


def test_the_fitted_predictor_is_kept_beside_the_checkpoint_and_reused(
    specializer: Specializer, search_checkpoint: Path
):
    path = predictor_path(search_checkpoint)
    assert path.is_file()

    def no_measuring():
        raise AssertionError("a kept predictor must not be fitted again")

    checkpoint = load_checkpoint(search_checkpoint)
    predictor = resolve_accuracy_predictor(search_checkpoint, checkpoint, no_measuring)
    assert predictor.supernet_version == checkpoint.version
    assert len(predictor.samples) == FIT_SAMPLES
    # The fit was metered, Ray workers' measurements included, and kept with the file.
    assert predictor.fit_cost is not None
    assert predictor.fit_cost.cpu_seconds > 0 and predictor.fit_cost.joules > 0
    assert predictor.energy_model is not None and "power" in predictor.energy_model


def test_a_named_predictor_for_another_supernet_is_refused(
    specializer: Specializer, search_checkpoint: Path, tmp_path: Path
):
    checkpoint = load_checkpoint(search_checkpoint)
    stale = tmp_path / "stale.predictor"
    source = predictor_path(search_checkpoint).read_bytes()
    stale.write_bytes(source)
    other = dataclasses.replace(checkpoint, version="0" * 16)
    with pytest.raises(InvalidArgumentError, match="fitted for supernet"):
        resolve_accuracy_predictor(search_checkpoint, other, lambda: None, stale)
