"""A subnet as a sequence of layers, each described by its shapes alone.

Every predictor works on this description rather than on modules: the latency table is
keyed by it, the analytic model and the memory model read their figures from it, and
the ONNX block builder turns one layer into a graph a device can time. A layer is the
unit OFA's lookup tables use (a whole inverted-residual block, the stem, the first
block, the head), so one subnet is a handful of table lookups.

Figures describe the model *as exported*: BatchNorm is folded into the preceding
convolution (one bias per output channel), as the ONNX exporter does in eval mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ofa_fleet.core.arch import ArchConfig, BlockChoice
from ofa_fleet.core.complexity import conv_output_size
from ofa_fleet.core.space import SearchSpace

FLOAT_BYTES = 4


@dataclass(frozen=True)
class Layer:
    """One block of a subnet at a fixed input size (batch 1).

    Attributes:
        kind: ``stem``, ``first`` (the fixed depthwise-separable block), ``mbconv`` or
            ``head``.
        in_channels / out_channels: channels entering and leaving the layer (for the
            head, ``out_channels`` is the number of classes).
        mid_channels: hidden width (mbconv: expanded; head: the 1x1 expansion width).
        kernel: depthwise (or stem) kernel size.
        stride: spatial stride of the layer.
        size: input height and width.
        activation: ``relu`` or ``hswish``.
        se_hidden: squeeze-and-excitation hidden width, 0 without SE.
        feature_width: the head's feature-mix width, 0 without one.
    """

    kind: str
    in_channels: int
    out_channels: int
    mid_channels: int
    kernel: int
    stride: int
    size: int
    activation: str
    se_hidden: int = 0
    feature_width: int = 0

    @property
    def key(self) -> str:
        """Stable identity of the layer's shapes: the latency table's key."""
        return (
            f"{self.kind}-i{self.in_channels}-o{self.out_channels}-m{self.mid_channels}"
            f"-k{self.kernel}-s{self.stride}-h{self.size}-{self.activation}"
            f"-se{self.se_hidden}-f{self.feature_width}"
        )

    @property
    def out_size(self) -> int:
        return 1 if self.kind == "head" else conv_output_size(self.size, self.stride)

    @property
    def has_residual(self) -> bool:
        return (
            self.kind in ("first", "mbconv")
            and self.stride == 1
            and (self.in_channels == self.out_channels)
        )

    @cached_property
    def figures(self) -> LayerFigures:
        return _figures(self)


@dataclass(frozen=True)
class LayerFigures:
    """What a layer costs: arithmetic, weights, bytes moved and memory.

    Attributes:
        macs: multiply-accumulates (convolutions and the classifier).
        weights: exported parameters (floats), BatchNorm folded into biases.
        peak_bytes: most activation memory alive at once while the layer runs, counting
            its input, with every tensor freed after its last use.
        nodes: ONNX nodes the layer exports to.
    """

    macs: int
    weights: int
    peak_bytes: int
    nodes: int


def subnet_layers(
    space: SearchSpace, arch: ArchConfig, in_channels: int, num_classes: int
) -> list[Layer]:
    """The layers of subnet ``arch`` in execution order."""
    size = arch.resolution
    layers = [Layer("stem", in_channels, space.stem_width, 0, 3, space.stem_stride, size, "hswish")]
    size = conv_output_size(size, space.stem_stride)
    layers.append(Layer("first", space.stem_width, space.first_block_width, 0, 3, 1, size, "relu"))
    channels = space.first_block_width
    for spec, stage in zip(space.stages, arch.stages, strict=True):
        for index, block in enumerate(stage):
            stride = spec.stride if index == 0 else 1
            mid = space.mid_channels(channels, block.expand)
            hidden = space.se_channels(mid) if spec.use_se else 0
            layers.append(
                Layer(
                    "mbconv",
                    channels,
                    spec.width,
                    mid,
                    block.kernel,
                    stride,
                    size,
                    spec.activation,
                    hidden,
                )
            )
            channels, size = spec.width, conv_output_size(size, stride)
    layers.append(
        Layer(
            "head",
            channels,
            num_classes,
            space.head_width,
            1,
            1,
            size,
            "hswish",
            feature_width=space.feature_width,
        )
    )
    return layers


def space_layers(space: SearchSpace, in_channels: int, num_classes: int) -> list[Layer]:
    """Every distinct layer any subnet of ``space`` can contain (a latency table's rows).

    A block's shapes depend on its stage, whether it is the stage's first block, its
    kernel and expand ratio and the input resolution, not on its position further in.
    """
    seen: dict[str, Layer] = {}
    depth = 2 if space.max_depth >= 2 else 1
    for resolution in space.resolutions:
        for kernel in space.kernel_sizes:
            for expand in space.expand_ratios:
                choice = BlockChoice(kernel, expand)
                arch = ArchConfig(resolution, tuple((choice,) * depth for _ in space.stages))
                for layer in subnet_layers(space, arch, in_channels, num_classes):
                    seen.setdefault(layer.key, layer)
    return list(seen.values())


@dataclass(frozen=True)
class Node:
    """One node of the exported graph: its output and what it reads and computes.

    Attributes:
        name: output tensor name, unique within the layer.
        elements: elements of the output tensor (batch 1).
        inputs: tensors it reads (``"input"`` is the layer's input).
        op: ``conv``, ``dwconv``, ``gemm``, ``pool``, ``elementwise``.
        macs: multiply-accumulates.
        weights: parameters it reads (floats).
    """

    name: str
    elements: int
    inputs: tuple[str, ...]
    op: str
    macs: int = 0
    weights: int = 0


def _figures(layer: Layer) -> LayerFigures:
    nodes = layer_nodes(layer)
    input_elements = layer.in_channels * layer.size * layer.size
    return LayerFigures(
        macs=sum(n.macs for n in nodes),
        weights=sum(n.weights for n in nodes),
        peak_bytes=peak_live_elements(input_elements, nodes) * FLOAT_BYTES,
        nodes=len(nodes),
    )


def peak_live_elements(input_elements: int, nodes: list[Node]) -> int:
    """Most elements alive at once: a node's output is allocated while its inputs live,
    and every tensor is freed right after its last reader (what a memory planner does
    for a sequential schedule without in-place reuse)."""
    last_use: dict[str, int] = {}
    for step, node in enumerate(nodes):
        for name in node.inputs:
            last_use[name] = step
    live = {"input": input_elements}
    peak = input_elements
    for step, node in enumerate(nodes):
        live[node.name] = node.elements
        peak = max(peak, sum(live.values()))
        for name in node.inputs:
            if last_use[name] == step:
                live.pop(name, None)
    return peak


def layer_nodes(layer: Layer) -> list[Node]:
    """The layer's nodes in execution order, mirroring the exported graph node for node
    (activations are nodes of their own there; runtime fusions are left to measurement).
    """
    area_in = layer.size * layer.size
    area_out = layer.out_size * layer.out_size
    cin, cout, mid, k2 = layer.in_channels, layer.out_channels, layer.mid_channels, layer.kernel**2
    nodes: list[Node] = []

    def add(
        name: str, elements: int, inputs: tuple[str, ...], op: str, macs: int = 0, weights: int = 0
    ) -> None:
        nodes.append(Node(name, elements, inputs, op, macs, weights))

    match layer.kind:
        case "stem":
            add(
                "conv",
                cout * area_out,
                ("input",),
                "conv",
                cin * cout * k2 * area_out,
                cin * cout * k2 + cout,
            )
            add("act", cout * area_out, ("conv",), "elementwise")
        case "first":
            add("dw", cin * area_in, ("input",), "dwconv", cin * k2 * area_in, cin * k2 + cin)
            add("dw_act", cin * area_in, ("dw",), "elementwise")
            add(
                "project",
                cout * area_in,
                ("dw_act",),
                "conv",
                cin * cout * area_in,
                cin * cout + cout,
            )
            if layer.has_residual:
                add("add", cout * area_in, ("project", "input"), "elementwise")
        case "mbconv":
            add("expand", mid * area_in, ("input",), "conv", cin * mid * area_in, cin * mid + mid)
            add("expand_act", mid * area_in, ("expand",), "elementwise")
            add(
                "dw", mid * area_out, ("expand_act",), "dwconv", mid * k2 * area_out, mid * k2 + mid
            )
            add("dw_act", mid * area_out, ("dw",), "elementwise")
            features = "dw_act"
            if layer.se_hidden:
                hidden = layer.se_hidden
                add("se_pool", mid, ("dw_act",), "pool")
                add("se_reduce", hidden, ("se_pool",), "conv", mid * hidden, mid * hidden + hidden)
                add("se_relu", hidden, ("se_reduce",), "elementwise")
                add("se_expand", mid, ("se_relu",), "conv", mid * hidden, mid * hidden + mid)
                add("se_gate", mid, ("se_expand",), "elementwise")
                add("se_mul", mid * area_out, ("dw_act", "se_gate"), "elementwise")
                features = "se_mul"
            add(
                "project",
                cout * area_out,
                (features,),
                "conv",
                mid * cout * area_out,
                mid * cout + cout,
            )
            if layer.has_residual:
                add("add", cout * area_out, ("project", "input"), "elementwise")
        case _:
            add("expand", mid * area_in, ("input",), "conv", cin * mid * area_in, cin * mid + mid)
            add("expand_act", mid * area_in, ("expand",), "elementwise")
            add("pool", mid, ("expand_act",), "pool")
            pooled, width = "pool", mid
            if layer.feature_width:
                fw = layer.feature_width
                add("feature", fw, ("pool",), "conv", mid * fw, mid * fw)
                add("feature_act", fw, ("feature",), "elementwise")
                pooled, width = "feature_act", fw
            add("flatten", width, (pooled,), "elementwise")
            add("classifier", cout, ("flatten",), "gemm", width * cout, width * cout + cout)
    return nodes
