"""Measured latency of an ONNX model in onnxruntime on this machine."""

from __future__ import annotations

import statistics
import time

import numpy as np
import onnxruntime as ort


def measure_latency_ms(
    onnx_bytes: bytes,
    input_shape: tuple[int, ...],
    threads: int = 1,
    warmup: int = 10,
    runs: int = 50,
) -> float:
    """Median wall time of one ``session.run`` at ``input_shape``, in milliseconds.

    Medians over many runs: whole-model latencies here are fractions of a millisecond,
    where a single scheduler hiccup would dominate a mean.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    feed = {name: np.random.default_rng(0).standard_normal(input_shape, dtype=np.float32)}
    for _ in range(warmup):
        session.run(None, feed)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, feed)
        samples.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(samples)
