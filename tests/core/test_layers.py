"""The layer description against the real thing: exported ONNX graphs and onnxruntime."""

from __future__ import annotations

import random

import numpy as np
import onnx
import pytest
import torch

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.complexity import complexity
from ofa_fleet.core.export import ModelMetadata, export_onnx
from ofa_fleet.core.extract import extract
from ofa_fleet.core.layers import space_layers, subnet_layers
from ofa_fleet.core.space import cpu_space
from ofa_fleet.core.supernet import OFASupernet
from ofa_fleet.predictors.memory import (
    arena_peak_bytes,
    graph_peak_bytes,
    model_bytes,
    peak_memory_bytes,
    weight_bytes,
)
from ofa_fleet.predictors.onnx_blocks import layers_model

SPACE = cpu_space()
ARCHS = [ArchConfig.max(SPACE), ArchConfig.min(SPACE)] + [
    ArchConfig.sample(SPACE, random.Random(seed)) for seed in range(3)
]


@pytest.fixture(scope="module")
def supernet() -> OFASupernet:
    """Distinct values in every weight, as after training: the exporter merges equal
    initializers (an untrained net's zero biases), which would hide real weights."""
    torch.manual_seed(0)
    net = OFASupernet(SPACE).eval()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.01)
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
    return net


def exported(supernet: OFASupernet, arch: ArchConfig) -> bytes:
    r = arch.resolution
    meta = ModelMetadata(str(arch), "v", (1, 3, r, r), tuple("abcdefghij"), {}, 0, 0)
    return export_onnx(extract(supernet, arch), meta, [torch.randn(2, 3, r, r)]).onnx_bytes


@pytest.fixture(scope="module")
def exports(supernet) -> dict[str, bytes]:
    return {str(arch): exported(supernet, arch) for arch in ARCHS}


@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_macs_match_the_core_count(arch):
    layers = subnet_layers(SPACE, arch, 3, 10)
    assert sum(layer.figures.macs for layer in layers) == complexity(SPACE, arch, 3, 10).macs


@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_weights_and_nodes_are_exactly_the_exported_ones(exports, arch):
    model = onnx.load_from_string(exports[str(arch)])
    layers = subnet_layers(SPACE, arch, 3, 10)
    exported_weights = sum(onnx.numpy_helper.to_array(t).nbytes for t in model.graph.initializer)
    assert weight_bytes(layers) == exported_weights
    assert sum(layer.figures.nodes for layer in layers) == len(model.graph.node)
    size = len(exports[str(arch)])
    assert abs(model_bytes(layers) - size) / size < 0.005


@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_block_builder_has_the_exported_structure(exports, arch):
    ours = onnx.load_from_string(layers_model(subnet_layers(SPACE, arch, 3, 10)))
    theirs = onnx.load_from_string(exports[str(arch)])
    assert [n.op_type for n in ours.graph.node] == [n.op_type for n in theirs.graph.node]
    assert len(ours.graph.initializer) == len(theirs.graph.initializer)


@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_peak_memory_is_the_graphs_liveness_peak(exports, arch):
    layers = subnet_layers(SPACE, arch, 3, 10)
    assert peak_memory_bytes(layers) == graph_peak_bytes(exports[str(arch)])


@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_peak_memory_bounds_what_onnxruntime_holds(exports, arch):
    """onnxruntime fuses activations into convolutions, so it holds less than the graph
    as exported; the prediction must stay a safe bound and not a wild one."""
    r = arch.resolution
    predicted = peak_memory_bytes(subnet_layers(SPACE, arch, 3, 10))
    held = arena_peak_bytes(exports[str(arch)], (1, 3, r, r))
    assert 0.4 * predicted <= held <= 1.05 * predicted


def test_space_layers_cover_every_subnet():
    keys = {layer.key for layer in space_layers(SPACE, 3, 10)}
    rng = random.Random(0)
    for _ in range(200):
        arch = ArchConfig.sample(SPACE, rng)
        assert {layer.key for layer in subnet_layers(SPACE, arch, 3, 10)} <= keys


def test_block_models_run_in_onnxruntime():
    from ofa_fleet.inference.timing import make_session

    for layer in space_layers(SPACE, 3, 10)[:5]:
        session = make_session(layers_model([layer]), 1, "CPUExecutionProvider")
        x = np.zeros((1, layer.in_channels, layer.size, layer.size), np.float32)
        (out,) = session.run(None, {"input": x})
        assert out.shape[1] == layer.out_channels
