"""Model file size and peak activation memory of a subnet, computed from its layers.

``model_bytes``: the weights are exact (every exported parameter, BatchNorm folded, as
float32); the graph structure adds a measured ~108 bytes per node (names, attributes,
shapes), well under 1% of any file here. Tests check both against exported files.

``peak_memory_bytes``: the most activation memory alive at once during one batch-1
inference, for a sequential schedule that frees each tensor after its last reader
(`layers.peak_live_elements`). `graph_peak_bytes` runs the same rule over an exported
ONNX graph, so tests can check the arithmetic node for node; `arena_peak_bytes` reads
onnxruntime's own arena accounting for comparison with what the runtime really holds.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence

import numpy as np
import onnx
import onnxruntime as ort

from ofa_fleet.core.layers import FLOAT_BYTES, Layer, Node, peak_live_elements

ONNX_BYTES_PER_NODE = 108


def weight_bytes(layers: Sequence[Layer]) -> int:
    return sum(layer.figures.weights for layer in layers) * FLOAT_BYTES


def model_bytes(layers: Sequence[Layer]) -> int:
    """Size of the exported ONNX file (metadata aside); see the module docstring."""
    nodes = sum(layer.figures.nodes for layer in layers)
    return weight_bytes(layers) + ONNX_BYTES_PER_NODE * nodes


def peak_memory_bytes(layers: Sequence[Layer]) -> int:
    """Peak activation bytes: a layer's input and output are the only tensors that cross
    its boundary, so the whole model's peak is the largest layer's peak."""
    return max(layer.figures.peak_bytes for layer in layers)


def graph_peak_bytes(onnx_bytes: bytes) -> int:
    """The same liveness rule applied to an ONNX graph (shapes from shape inference).

    Nodes that only forward a weight (``Identity`` of an initializer) and initializers
    themselves are weights, not activations, and are left out.
    """
    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(onnx_bytes))
    graph = model.graph
    constants = {init.name for init in graph.initializer}
    shapes = {
        info.name: [d.dim_value or 1 for d in info.type.tensor_type.shape.dim]
        for info in [*graph.input, *graph.value_info, *graph.output]
    }
    nodes: list[Node] = []
    renamed = {graph.input[0].name: "input"}
    for node in graph.node:
        inputs = [i for i in node.input if i and i not in constants]
        if not inputs:  # forwards a constant: a weight, not an activation
            constants.update(node.output)
            continue
        (output,) = node.output
        renamed.setdefault(output, output)
        nodes.append(
            Node(
                name=renamed[output],
                elements=int(np.prod(shapes[output])),
                inputs=tuple(renamed[i] for i in inputs),
                op=node.op_type,
            )
        )
    input_elements = int(np.prod(shapes[graph.input[0].name]))
    return peak_live_elements(input_elements, nodes) * FLOAT_BYTES


def arena_peak_bytes(onnx_bytes: bytes, input_shape: Sequence[int], optimize: bool = True) -> int:
    """Peak bytes onnxruntime's CPU arena holds for activations during one inference.

    Read from onnxruntime's profiler, which records the arena's bytes in use around every
    node; the bytes in use before the first node (the input and the runtime's own
    buffers) are subtracted.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.enable_mem_pattern = False  # allocate per tensor, so the arena tracks each one
    options.enable_profiling = True
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = os.path.join(folder, "arena")
        session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: np.zeros(input_shape, dtype=np.float32)}
        session.run(None, feed)
        with open(session.end_profiling()) as handle:
            events = json.load(handle)
    nodes = [e["args"] for e in events if e.get("cat") == "Node" and "mem_in_use_peak" in e["args"]]
    if not nodes:
        raise RuntimeError("this onnxruntime build does not report arena memory in its profile")
    baseline = int(nodes[0]["mem_bytes_in_use"]) - int(nodes[0]["mem_in_use_delta"])
    return max(int(n["mem_in_use_peak"]) for n in nodes) - baseline
