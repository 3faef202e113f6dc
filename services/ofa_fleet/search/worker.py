"""What runs inside a Ray worker: the evolution, measuring and exporting candidates.

Ray reuses worker processes, so each keeps what it built warm: the supernet rebuilt from
the bundle in the object store (once per process, not once per task), and a predictor
per hardware profile. Tasks receive the bundle's `ObjectRef` inside a list, which Ray
does not resolve, so a warm worker does not even map the weights again.

These are plain functions; `search.workers` wraps them as Ray tasks, and tests call them
directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import ray
import torch

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import Checkpoint
from ofa_fleet.data import DataSplits
from ofa_fleet.errors import FailedPreconditionError
from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.inference.timing import InterleavedTimer
from ofa_fleet.predictors.accuracy import AccuracyPredictor
from ofa_fleet.predictors.subnet_predictor import SubnetPredictor
from ofa_fleet.search.bundle import SupernetBundle
from ofa_fleet.search.candidates import Budget, rerank_order
from ofa_fleet.search.evolution import EvolutionSearch, EvolutionSettings, Progress, SearchOutcome
from ofa_fleet.storage.lru import Lru
from ofa_fleet.subnet import Subnet, export_subnet, materialize
from ofa_fleet.training.evaluate import top1_accuracy

PROFILES_KEPT = 32


@dataclass
class WorkerState:
    checkpoint: Checkpoint
    splits: DataSplits
    accuracy: AccuracyPredictor | None


_lock = threading.Lock()
_states: dict[str, WorkerState] = {}
_predictors: Lru[tuple[str, str], SubnetPredictor] = Lru(max_entries=PROFILES_KEPT)


def profile_key(profile: HardwareProfile) -> str:
    """Content hash of a profile: equal profiles share a predictor and a cache entry."""
    text = json.dumps(profile.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def state_for(bundle_box: list[Any]) -> WorkerState:
    """This process's supernet, data and accuracy predictor for the boxed bundle."""
    ref = bundle_box[0]
    key = ref.hex() if isinstance(ref, ray.ObjectRef) else str(id(ref))
    with _lock:
        state = _states.get(key)
        if state is None:
            bundle: SupernetBundle = ray.get(ref) if isinstance(ref, ray.ObjectRef) else ref
            torch.set_num_threads(1)
            state = WorkerState(bundle.checkpoint(), bundle.data_splits(), bundle.accuracy())
            _states.clear()  # a new bundle (a new supernet) retires the old one
            _predictors.clear()
            _states[key] = state
        return state


def predictor_for(state: WorkerState, profile_box: list[Any], key: str) -> SubnetPredictor:
    if state.accuracy is None:
        raise FailedPreconditionError("these search workers hold no accuracy predictor")
    predictor = _predictors.get((state.checkpoint.version, key))
    if predictor is not None:
        return predictor
    ref = profile_box[0]
    profile: HardwareProfile = ray.get(ref) if isinstance(ref, ray.ObjectRef) else ref
    supernet = state.checkpoint.supernet
    predictor = SubnetPredictor(
        state.checkpoint.space,
        supernet.in_channels,
        supernet.num_classes,
        profile,
        state.accuracy,
        state.checkpoint.version,
    )
    _predictors.put((state.checkpoint.version, key), predictor)
    return predictor


@dataclass(frozen=True)
class Evolved:
    """A search's outcome, and where its latency figures came from."""

    outcome: SearchOutcome
    latency_source: str


def evolve(
    bundle_box: list[Any],
    profile_box: list[Any],
    key: str,
    settings: EvolutionSettings,
    budget: Budget,
) -> Generator[Progress, None, Evolved]:
    """One whole evolution in this worker, scored in process by its predictor.

    A search asks for about 35 rounds of about 150 candidates. Scored on the workers,
    each round was a fan-out and a gather whose round trips cost more than the scoring:
    the search stage took a median 1.15-1.2 s so, and 0.56 s as one task (the digits
    supernet's example profiles, ``bench/search_specialize.py``, both versions run
    alternately). Concurrent searches spread over the workers; the progress streams back
    to the caller as the generator yields it. A worker lost mid-search reruns it whole
    (Ray retries the task), and the same seed gives the same outcome.
    """
    state = state_for(bundle_box)
    predictor = predictor_for(state, profile_box, key)
    search = EvolutionSearch(state.checkpoint.space, predictor.predict, budget, settings)
    outcome = yield from search.steps()
    return Evolved(outcome, predictor.latency.source)


def measure_top1(bundle_box: list[Any], arch: str, seed: int) -> float:
    """Real held-out top-1: extract, recalibrate BatchNorm, evaluate."""
    state = state_for(bundle_box)
    config = ArchConfig.parse(arch, state.checkpoint.space)
    subnet = materialize(state.checkpoint.supernet, config, state.splits, seed)
    return top1_accuracy(
        subnet.net, state.splits.val, state.splits.normalization, config.resolution
    )


def rerank(
    bundle_box: list[Any], archs: list[str], latencies_ms: list[float], seed: int
) -> dict[str, Any]:
    """Real held-out top-1 of each of ``archs`` (in order), and the best of them exported
    to ONNX and verified against PyTorch.

    The search's winner is the best of one task's share (`rerank_order`, first best on
    ties, shares in order), so with each task exporting its own best the winner's model
    is ready when re-ranking ends. Exported afterwards in a task of its own, it was
    extracted and recalibrated a second time: half of that export's time.
    """
    if not archs or len(archs) != len(latencies_ms):
        raise ValueError("re-ranking needs archs, each with its predicted latency")
    state = state_for(bundle_box)
    space = state.checkpoint.space
    measured: list[float] = []
    best: tuple[tuple[float, float], int, Subnet] | None = None
    for index, (arch, latency_ms) in enumerate(zip(archs, latencies_ms, strict=True)):
        config = ArchConfig.parse(arch, space)
        subnet = materialize(state.checkpoint.supernet, config, state.splits, seed)
        top1 = top1_accuracy(
            subnet.net, state.splits.val, state.splits.normalization, config.resolution
        )
        measured.append(top1)
        order = rerank_order(top1, latency_ms)
        if best is None or order > best[0]:
            best = (order, index, subnet)  # only the best so far is kept
    assert best is not None
    exported = export_subnet(state.checkpoint, best[2], state.splits, seed)
    return {
        "top1": measured,
        "best": best[1],
        "onnx_bytes": exported.onnx_bytes,
        "sha256": exported.sha256,
        "max_abs_diff": exported.max_abs_diff,
    }


def time_model(
    onnx_bytes: bytes,
    input_shape: tuple[int, ...],
    threads: int,
    graph_optimization: str,
) -> float:
    """The model's latency in onnxruntime on this worker: only meaningful when the worker
    runs on the hardware the profile describes."""
    timer = InterleavedTimer(threads, "CPUExecutionProvider", graph_optimization)
    timer.add(onnx_bytes, input_shape)
    return timer.measure(rounds=5, runs_per_round=20)[0]


def worker_pid() -> int:
    return os.getpid()


def warm(bundle_box: list[Any], pause: float) -> int:
    """Build this process's state, hold the worker ``pause`` seconds, return its pid."""
    state_for(bundle_box)
    time.sleep(pause)
    return os.getpid()
