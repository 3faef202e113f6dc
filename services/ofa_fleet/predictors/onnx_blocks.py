"""ONNX graphs of `Layer` descriptions with random weights, for timing on a device.

A device profiles itself with onnxruntime alone: no PyTorch, no supernet weights. The
graphs are the exported models' own (`core.onnx_graph`, the walk `core.export` takes)
with random weights: on a CPU, latency depends on shapes, not on values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from ofa_fleet.core.layers import Layer
from ofa_fleet.core.onnx_graph import INPUT, GraphBuilder, WeightSource

OUTPUT = "output"


def random_weights(seed: int) -> WeightSource:
    """He-initialised weights: values of a trained network's magnitude."""
    rng = np.random.default_rng(seed)

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        fan_in = int(np.prod(shape[1:])) or 1
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return draw


def _serialize(
    builder: GraphBuilder, name: str, input_shape: list[int], output_shape: list[int]
) -> bytes:
    model = builder.model(name, list(input_shape), OUTPUT, list(output_shape))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def layers_model(layers: Sequence[Layer], seed: int = 0) -> bytes:
    """Serialized ONNX model running ``layers`` in order on a batch-1 input."""
    if not layers:
        raise ValueError("layers_model needs at least one layer")
    builder = GraphBuilder(random_weights(seed))
    builder.layers(list(layers))
    first, last = layers[0], layers[-1]
    input_shape = [1, first.in_channels, first.size, first.size]
    output_shape = (
        [1, last.out_channels]
        if last.kind == "head"
        else [1, last.out_channels, last.out_size, last.out_size]
    )
    return _serialize(builder, "layers", input_shape, output_shape)


def conv_chain_model(channels: int, size: int, count: int, seed: int = 0) -> bytes:
    """``count`` 1x1 convolutions (each with a fused-able ReLU) keeping the shape.

    Timing chains of 1..n of these separates the per-model cost at a tensor shape
    (runtime call, layout conversions at the edges) from per-layer compute.
    """
    builder = GraphBuilder(random_weights(seed))
    out = INPUT
    for _ in range(count):
        out = builder.node("Relu", [builder.conv(out, channels, channels, 1, 1, False, True)])
    shape = [1, channels, size, size]
    return _serialize(builder, "chain", shape, shape)
