"""ONNX export of a static subnet, and the checks that make it safe to ship.

The graph is built directly from the subnet's layers (`core.onnx_graph`, the same walk
devices time their layers with), each BatchNorm folded into its convolution in float64.
A subnet is four kinds of layer and no control flow, so tracing it through PyTorch's
exporter bought nothing but time, on the request path of every specialization: three
digits subnets took 0.42-0.67 s each to export and verify with TorchScript tracing (the
dynamo exporter about 4 s), and take 0.07-0.08 s so, verification included. Every
exported model is verified twice before it leaves this module: ``onnx.checker`` with
``full_check`` and an onnxruntime run compared to PyTorch's own forward.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from ofa_fleet.core.onnx_graph import INPUT, GraphBuilder
from ofa_fleet.core.static_net import MBConv, StaticNet
from ofa_fleet.errors import ExportError

INPUT_NAME = INPUT
OUTPUT_NAME = "logits"
PRODUCER = "ofa-fleet"


@dataclass(frozen=True)
class ModelMetadata:
    """What a device needs to know about a model, stored in ONNX ``metadata_props``."""

    arch: str
    supernet_version: str
    input_shape: tuple[int, int, int, int]
    classes: tuple[str, ...]
    normalization: dict[str, list[float]]
    macs: int
    params: int
    extra: dict[str, str] = field(default_factory=dict)

    def to_props(self) -> dict[str, str]:
        props = {
            "ofa_fleet.arch": self.arch,
            "ofa_fleet.supernet_version": self.supernet_version,
            "ofa_fleet.input_shape": json.dumps(list(self.input_shape)),
            "ofa_fleet.classes": json.dumps(list(self.classes)),
            "ofa_fleet.normalization": json.dumps(self.normalization, sort_keys=True),
            "ofa_fleet.macs": str(self.macs),
            "ofa_fleet.params": str(self.params),
        }
        props.update({f"ofa_fleet.{key}": value for key, value in self.extra.items()})
        return props


@dataclass(frozen=True)
class ExportedModel:
    onnx_bytes: bytes
    sha256: str
    seconds: float
    max_abs_diff: float


def export_onnx(
    net: StaticNet,
    metadata: ModelMetadata,
    check_inputs: list[torch.Tensor],
    tolerance: float = 1e-4,
) -> ExportedModel:
    """Export ``net`` (eval mode) to ONNX bytes, attach metadata, verify, return.

    ``check_inputs`` are batches on which onnxruntime must match PyTorch within
    ``tolerance``: the largest difference of the logits, relative to their largest
    magnitude when that exceeds 1 (float32 rounding grows with the logits' scale and the
    network's depth: ImageNet-sized subnets differ by a few 1e-4 on logits in the tens);
    random and real data both.
    """
    started = time.perf_counter()
    net = net.eval()
    _, channels, height, width = metadata.input_shape
    if height != width:
        raise ExportError(f"subnets take square inputs, got {metadata.input_shape}")
    weights = _folded_weights(net)
    builder = GraphBuilder(weights)
    builder.layers(net.layers(height))
    weights.check_all_taken()
    model = builder.model(
        "subnet",
        ["batch", channels, height, width],
        OUTPUT_NAME,
        ["batch", net.head.classifier.out_features],
    )
    model.producer_name = PRODUCER
    for key, value in metadata.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx_bytes = model.SerializeToString()
    max_diff = verify_onnx(onnx_bytes, net, check_inputs, tolerance)
    return ExportedModel(
        onnx_bytes=onnx_bytes,
        sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        seconds=time.perf_counter() - started,
        max_abs_diff=max_diff,
    )


@torch.no_grad()
def _folded_weights(net: StaticNet) -> _InOrder:
    """``net``'s weights in the order the graph walk asks for them, each BatchNorm folded
    into the convolution before it (in float64, then float32, as shipped); a weight of
    another shape than the walk asks for is an `ExportError`, never a wrong model."""
    arrays: list[np.ndarray] = []

    def plain(*tensors: torch.Tensor | None) -> None:
        for tensor in tensors:
            assert tensor is not None  # a bias the module was built with
            arrays.append(tensor.detach().cpu().float().numpy())

    def folded(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
        assert norm.running_var is not None and norm.running_mean is not None
        scale = norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)
        weight = conv.weight.double() * scale[:, None, None, None]
        shift = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        bias = norm.bias.double() + (shift - norm.running_mean.double()) * scale
        plain(weight, bias)

    folded(net.stem.conv, net.stem.bn)
    folded(net.first_block.depthwise, net.first_block.depthwise_bn)
    folded(net.first_block.project, net.first_block.project_bn)
    for block in net.blocks:
        assert isinstance(block, MBConv)
        folded(block.expand, block.expand_bn)
        folded(block.depthwise, block.depthwise_bn)
        if block.se is not None:
            plain(block.se.reduce.weight, block.se.reduce.bias)
            plain(block.se.expand.weight, block.se.expand.bias)
        folded(block.project, block.project_bn)
    head = net.head
    folded(head.expand, head.expand_bn)
    if head.feature_mix is not None:
        plain(head.feature_mix.weight)
    plain(head.classifier.weight, head.classifier.bias)
    return _InOrder(arrays)


class _InOrder:
    """A `WeightSource` handing out given arrays in order, each checked against the shape
    asked for."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.arrays = arrays
        self.taken = 0

    def __call__(self, shape: tuple[int, ...]) -> np.ndarray:
        index = self.taken
        array = self.arrays[index] if index < len(self.arrays) else None
        if array is None or array.shape != shape:
            found = "nothing" if array is None else f"shape {array.shape}"
            raise ExportError(
                f"the network's weight {index} does not follow its layers: the graph needs "
                f"shape {shape}, the network has {found}"
            )
        self.taken += 1
        return array

    def check_all_taken(self) -> None:
        if self.taken != len(self.arrays):
            raise ExportError(
                f"the network has {len(self.arrays)} weights, its layers took {self.taken}"
            )


def verify_onnx(
    onnx_bytes: bytes, net: nn.Module, inputs: list[torch.Tensor], tolerance: float
) -> float:
    """Run the checker and compare onnxruntime to PyTorch; return the largest difference
    (absolute, compared with ``tolerance`` scaled by the logits' magnitude when above 1).

    Past that tolerance, float32 itself may be what cannot agree: a network whose
    BatchNorm statistics came from a handful of images can turn random noise into logits
    in the thousands, and there PyTorch's own float32 answer is a few units off the exact
    one. A float64 run of the same network then decides: the export passes when
    onnxruntime is no further from it than twice PyTorch's float32 is. A real export
    fault (a wrong weight, a wrong op) is far further than that and still fails.
    """
    try:
        onnx.checker.check_model(onnx.load_from_string(onnx_bytes), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported model fails onnx.checker: {exc}") from exc
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    worst, scale = 0.0, 1.0
    answers: list[tuple[torch.Tensor, np.ndarray, np.ndarray]] = []
    with torch.no_grad():
        for batch in inputs:
            expected = net(batch).numpy()
            (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
            if not (np.isfinite(expected).all() and np.isfinite(actual).all()):
                raise ExportError(
                    "the network gives non-finite logits (NaN or infinity) on a check "
                    "batch: its weights or BatchNorm statistics are broken; nothing exported"
                )
            answers.append((batch, expected, actual))
            worst = max(worst, float(np.max(np.abs(actual - expected))))
            scale = max(scale, float(np.max(np.abs(expected))))
    if worst <= tolerance * scale:
        return worst
    float32_error, runtime_error = _errors_against_float64(net, answers)
    if runtime_error > max(tolerance * scale, 2 * float32_error):
        raise ExportError(
            f"onnxruntime output differs from PyTorch by {worst:.3g} (> {tolerance:g} x "
            f"{scale:.3g}, the logits' largest magnitude), and from a float64 run by "
            f"{runtime_error:.3g}, where PyTorch's float32 is within {float32_error:.3g}"
        )
    return worst


def _errors_against_float64(
    net: nn.Module, answers: list[tuple[torch.Tensor, np.ndarray, np.ndarray]]
) -> tuple[float, float]:
    """(PyTorch float32's, onnxruntime's) largest distance from a float64 run of ``net``."""
    exact_net = copy.deepcopy(net).double().eval()
    float32_error = runtime_error = 0.0
    with torch.no_grad():
        for batch, expected, actual in answers:
            exact = exact_net(batch.double()).numpy()
            float32_error = max(float32_error, float(np.max(np.abs(expected - exact))))
            runtime_error = max(runtime_error, float(np.max(np.abs(actual - exact))))
    return float32_error, runtime_error


def read_metadata(onnx_bytes: bytes) -> dict[str, str]:
    """The ``ofa_fleet.*`` metadata of an exported model, keys without the prefix."""
    model = onnx.load_from_string(onnx_bytes)
    prefix = "ofa_fleet."
    return {p.key[len(prefix) :]: p.value for p in model.metadata_props if p.key.startswith(prefix)}
