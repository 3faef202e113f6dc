"""Does the installed model run here, and how fast: load, one smoke inference, timing.

A model that verified byte for byte can still fail on the device (an operator it lacks,
an input it cannot feed, an output full of NaN from a bad export); only running it tells.
The input comes from the ONNX graph itself (its first input's shape, with a symbolic
batch dimension taken as 1, the batch the budget is stated at), zeros of its type, so the
check needs nothing but the model. The latency reported is the median of repeated runs
after a warm-up, with the thread count the profile gives the runtime: the median because
one slow run (the device doing something else) should not move the figure a fleet's
rollout is judged by.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ofa_fleet.errors import FailedPreconditionError
from ofa_fleet.inference.graph_optimization import DEFAULT_GRAPH_OPTIMIZATION
from ofa_fleet.inference.timing import make_session

PROVIDER = "CPUExecutionProvider"
_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
}


@dataclass(frozen=True)
class Timing:
    """How the latency is measured: warm-up runs, then up to `runs` within `max_seconds`."""

    warmup: int = 3
    runs: int = 30
    min_runs: int = 5
    max_seconds: float = 2.0


@dataclass(frozen=True)
class SmokeResult:
    input_shape: tuple[int, ...]
    load_seconds: float
    smoke_seconds: float
    latency_ms: float
    runs: int
    ready_at: float  # time.monotonic() when the smoke inference had passed


def smoke_test(
    path: Path,
    threads: int = 1,
    timing: Timing = Timing(),
    graph_optimization: str = DEFAULT_GRAPH_OPTIMIZATION,
) -> SmokeResult:
    """Load `path` in onnxruntime, check one inference on zeros, time it.

    Raises `FailedPreconditionError` with the reason when the model does not load, cannot
    be fed, or answers with a non-finite value.
    """
    if threads < 1:
        raise FailedPreconditionError(f"threads must be at least 1, got {threads}")
    started = time.perf_counter()
    try:
        session = make_session(path.read_bytes(), threads, PROVIDER, graph_optimization)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise FailedPreconditionError(
            f"model {path.name} does not load in onnxruntime: {exc}"
        ) from None
    loaded = time.perf_counter()
    feed = _zeros_feed(session, path.name)

    def run() -> list[object]:
        return session.run(None, feed)  # type: ignore[no-any-return]

    try:
        outputs = run()
    except Exception as exc:
        raise FailedPreconditionError(
            f"model {path.name} fails its smoke inference: {exc}"
        ) from None
    for meta, value in zip(session.get_outputs(), outputs, strict=True):
        array = np.asarray(value)
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            raise FailedPreconditionError(
                f"model {path.name} answers zeros with non-finite values in output {meta.name!r}"
            )
    ready_at = time.monotonic()
    smoke_done = time.perf_counter()
    latency_ms, runs = _median_latency_ms(run, timing)
    shape = next(iter(feed.values())).shape
    return SmokeResult(
        input_shape=tuple(int(d) for d in shape),
        load_seconds=loaded - started,
        smoke_seconds=smoke_done - loaded,
        latency_ms=latency_ms,
        runs=runs,
        ready_at=ready_at,
    )


def _zeros_feed(session: ort.InferenceSession, name: str) -> dict[str, np.ndarray]:
    """Zeros for every input, shaped by the graph; a symbolic batch dimension becomes 1."""
    feed: dict[str, np.ndarray] = {}
    for index, meta in enumerate(session.get_inputs()):
        dims: list[int] = []
        for position, dim in enumerate(meta.shape):
            if isinstance(dim, int) and dim > 0:
                dims.append(dim)
            elif position == 0:
                dims.append(1)  # the batch: the budget is stated at batch 1
            else:
                raise FailedPreconditionError(
                    f"model {name} input {meta.name!r} has a free dimension {dim!r} at "
                    f"position {position}; only the batch (position 0) may be free"
                )
        dtype = _DTYPES.get(meta.type)
        if dtype is None:
            raise FailedPreconditionError(
                f"model {name} input {index} ({meta.name!r}) has type {meta.type}, which the "
                "smoke test cannot feed"
            )
        feed[meta.name] = np.zeros(dims, dtype=dtype)
    return feed


def _median_latency_ms(run: Callable[[], object], timing: Timing) -> tuple[float, int]:
    for _ in range(timing.warmup):
        run()
    samples: list[float] = []
    budget_end = time.perf_counter() + timing.max_seconds
    while len(samples) < timing.runs and (
        len(samples) < timing.min_runs or time.perf_counter() < budget_end
    ):
        began = time.perf_counter()
        run()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1000.0, len(samples)
