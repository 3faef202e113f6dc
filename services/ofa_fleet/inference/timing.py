"""Timing many small onnxruntime models fairly: interleaved rounds, fastest round's median.

Latencies here are microseconds to a millisecond. Timing one model after another lets
slow drift (frequency scaling, another process waking up, a busy neighbour on a shared
host) land on some models and not others, which skews a table far more than noise does.
Measured on this project's 2-core VM: the same model alternates between about 0.37 ms
and 0.65 ms for seconds at a time, whatever the process does. So every model is timed a
little in each of several rounds, round-robin, and its figure is the *lowest* of its
per-round medians: interference only ever adds time, so the fastest round is the best
estimate of the undisturbed latency a device sees, and every model gets its own chance
at a quiet round.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import onnxruntime as ort

from ofa_fleet.inference.graph_optimization import (
    DEFAULT_GRAPH_OPTIMIZATION,
    check_graph_optimization,
)

_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def make_session(
    onnx_bytes: bytes,
    threads: int,
    provider: str,
    graph_optimization: str = DEFAULT_GRAPH_OPTIMIZATION,
) -> ort.InferenceSession:
    """A session run the way a device of that runtime setting runs its model."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    level = check_graph_optimization(graph_optimization, "graph optimization")
    options.graph_optimization_level = _LEVELS[level]
    return ort.InferenceSession(onnx_bytes, options, providers=[provider])


class InterleavedTimer:
    """Times a set of models in round-robin rounds; see the module docstring."""

    def __init__(
        self,
        threads: int = 1,
        provider: str = "CPUExecutionProvider",
        graph_optimization: str = DEFAULT_GRAPH_OPTIMIZATION,
    ) -> None:
        self.threads = threads
        self.provider = provider
        self.graph_optimization = graph_optimization
        self._runs: list[Callable[[], object]] = []

    def add(self, onnx_bytes: bytes, input_shape: Sequence[int]) -> int:
        """Register a model; returns its index in `measure`'s result."""
        session = make_session(onnx_bytes, self.threads, self.provider, self.graph_optimization)
        name = session.get_inputs()[0].name
        feed = {name: np.random.default_rng(0).standard_normal(input_shape, dtype=np.float32)}
        self._runs.append(lambda: session.run(None, feed))
        return len(self._runs) - 1

    def __len__(self) -> int:
        return len(self._runs)

    def measure(
        self,
        rounds: int = 9,
        runs_per_round: int = 20,
        warmup: int = 10,
        on_round: Callable[[int], None] | None = None,
    ) -> list[float]:
        """Milliseconds per registered model: the lowest per-round median."""
        for run in self._runs:
            for _ in range(warmup):
                run()
        per_round: list[list[float]] = [[] for _ in self._runs]
        clock = time.perf_counter
        for round_index in range(rounds):
            for index, run in enumerate(self._runs):
                samples = []
                for _ in range(runs_per_round):
                    started = clock()
                    run()
                    samples.append(clock() - started)
                per_round[index].append(statistics.median(samples) * 1000.0)
            if on_round is not None:
                on_round(round_index + 1)
        return [min(values) for values in per_round]
