"""ONNX graphs built straight from `Layer` descriptions, for timing on a device.

A device profiles itself with onnxruntime alone: no PyTorch, no supernet weights. The
graphs here have the exported models' structure node for node (BatchNorm folded into
convolution biases, activations as their own nodes, the same opset), with random
weights: on a CPU, latency depends on shapes, not on values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ofa_fleet.core.layers import Layer
from ofa_fleet.core.opset import OPSET

INPUT = "input"
OUTPUT = "output"


class _GraphBuilder:
    def __init__(self, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.counter = 0

    def name(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def weight(self, shape: tuple[int, ...]) -> str:
        fan_in = int(np.prod(shape[1:])) or 1
        values = (self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        name = self.name("w")
        self.initializers.append(numpy_helper.from_array(values, name))
        return name

    def node(self, op: str, inputs: list[str], **attributes: Any) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attributes))
        return out

    def conv(
        self, x: str, cin: int, cout: int, kernel: int, stride: int, depthwise: bool, bias: bool
    ) -> str:
        group = cin if depthwise else 1
        inputs = [x, self.weight((cout, cin // group, kernel, kernel))]
        if bias:
            inputs.append(self.weight((cout,)))
        pad = kernel // 2
        return self.node(
            "Conv",
            inputs,
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[pad] * 4,
            group=group,
            dilations=[1, 1],
        )

    def act(self, x: str, kind: str) -> str:
        return self.node("Relu" if kind == "relu" else "HardSwish", [x])

    def mean(self, x: str) -> str:
        return self.node("ReduceMean", [x], axes=[2, 3], keepdims=1)

    def serialize(self, name: str, input_shape: list[int], output_shape: list[int]) -> bytes:
        """The checked model: the last node's output becomes the graph's output."""
        self.nodes[-1].output[0] = OUTPUT
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, output_shape)],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model.SerializeToString()

    def layer(self, x: str, layer: Layer) -> str:
        cin, cout, mid = layer.in_channels, layer.out_channels, layer.mid_channels
        match layer.kind:
            case "stem":
                out = self.conv(x, cin, cout, layer.kernel, layer.stride, False, True)
                return self.act(out, layer.activation)
            case "first":
                out = self.act(self.conv(x, cin, cin, 3, 1, True, True), layer.activation)
                out = self.conv(out, cin, cout, 1, 1, False, True)
                return self.node("Add", [out, x]) if layer.has_residual else out
            case "mbconv":
                out = self.act(self.conv(x, cin, mid, 1, 1, False, True), layer.activation)
                out = self.conv(out, mid, mid, layer.kernel, layer.stride, True, True)
                out = self.act(out, layer.activation)
                if layer.se_hidden:
                    gate = self.conv(self.mean(out), mid, layer.se_hidden, 1, 1, False, True)
                    gate = self.conv(
                        self.node("Relu", [gate]), layer.se_hidden, mid, 1, 1, False, True
                    )
                    gate = self.node("HardSigmoid", [gate], alpha=1.0 / 6.0, beta=0.5)
                    out = self.node("Mul", [out, gate])
                out = self.conv(out, mid, cout, 1, 1, False, True)
                return self.node("Add", [out, x]) if layer.has_residual else out
            case _:
                out = self.act(self.conv(x, cin, mid, 1, 1, False, True), "hswish")
                out = self.mean(out)
                features = mid
                if layer.feature_width:
                    out = self.conv(out, mid, layer.feature_width, 1, 1, False, False)
                    out = self.act(out, "hswish")
                    features = layer.feature_width
                out = self.node("Flatten", [out], axis=1)
                classifier = [self.weight((cout, features)), self.weight((cout,))]
                return self.node("Gemm", [out, *classifier], alpha=1.0, beta=1.0, transB=1)


def layers_model(layers: Sequence[Layer], seed: int = 0) -> bytes:
    """Serialized ONNX model running ``layers`` in order on a batch-1 input."""
    if not layers:
        raise ValueError("layers_model needs at least one layer")
    builder = _GraphBuilder(seed)
    out = INPUT
    for layer in layers:
        out = builder.layer(out, layer)
    first, last = layers[0], layers[-1]
    input_shape = [1, first.in_channels, first.size, first.size]
    output_shape = (
        [1, last.out_channels]
        if last.kind == "head"
        else [1, last.out_channels, last.out_size, last.out_size]
    )
    return builder.serialize("layers", input_shape, output_shape)


def conv_chain_model(channels: int, size: int, count: int, seed: int = 0) -> bytes:
    """``count`` 1x1 convolutions (each with a fused-able ReLU) keeping the shape.

    Timing chains of 1..n of these separates the per-model cost at a tensor shape
    (runtime call, layout conversions at the edges) from per-layer compute.
    """
    builder = _GraphBuilder(seed)
    out = INPUT
    for _ in range(count):
        out = builder.node("Relu", [builder.conv(out, channels, channels, 1, 1, False, True)])
    shape = [1, channels, size, size]
    return builder.serialize("chain", shape, shape)
