"""ONNX graphs built straight from `Layer` descriptions: one walk, two weight sources.

The exported model and the graphs a device times are the same graph node for node
(BatchNorm folded into convolution biases, activations as their own nodes, the same
opset): `GraphBuilder.layer` is the only place that structure is written down. Where the
weights come from is the caller's: a device timing its layers draws random ones (on a
CPU, latency depends on shapes, not values); `core.export` hands over a trained subnet's,
folded, in the order the walk asks for them, and each must have the shape it asks for.

No torch here: devices build these graphs with onnx and numpy alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ofa_fleet.core.layers import Layer
from ofa_fleet.core.opset import OPSET

INPUT = "input"
IR_VERSION = 8

WeightSource = Callable[[tuple[int, ...]], np.ndarray]
"""The next weight the walk needs, of the shape given (float32)."""


class GraphBuilder:
    def __init__(self, weights: WeightSource) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.weights = weights
        self.counter = 0

    def name(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def weight(self, shape: tuple[int, ...]) -> str:
        name = self.name("w")
        self.initializers.append(numpy_helper.from_array(self.weights(shape), name))
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

    def model(
        self,
        name: str,
        input_shape: list[int | str],
        output_name: str,
        output_shape: list[int | str],
    ) -> onnx.ModelProto:
        """The model, reading `INPUT` and writing the last node's output as
        ``output_name``; a string in a shape is a symbolic dimension (a batch of any size)."""
        self.nodes[-1].output[0] = output_name
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, output_shape)],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        return model

    def layers(self, layers: list[Layer]) -> str:
        """Every layer in order, from the graph's input; the last one's output."""
        out = INPUT
        for layer in layers:
            out = self.layer(out, layer)
        return out

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
