import random

import onnx
import onnxruntime as ort
import pytest
import torch

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.complexity import complexity
from ofa_fleet.core.export import ModelMetadata, export_onnx, read_metadata, verify_onnx
from ofa_fleet.core.extract import extract
from ofa_fleet.core.layers import subnet_layers
from ofa_fleet.core.space import SearchSpace, mobilenet_v3_imagenet_space
from ofa_fleet.core.supernet import OFASupernet
from ofa_fleet.errors import ExportError
from tests.core.test_supernet_extract import perturbed_supernet

SPACE = SearchSpace()


def metadata(arch: ArchConfig) -> ModelMetadata:
    size = complexity(SPACE, arch, 3, 10)
    return ModelMetadata(
        arch=str(arch),
        supernet_version="abc123",
        input_shape=(1, 3, arch.resolution, arch.resolution),
        classes=tuple("0123456789"),
        normalization={"mean": [0.5] * 3, "std": [0.25] * 3},
        macs=size.macs,
        params=size.params,
    )


@pytest.mark.parametrize("which", ["max", "min", "random"])
def test_export_passes_checker_and_matches_pytorch(which):
    net = perturbed_supernet()
    arch = {
        "max": ArchConfig.max(SPACE),
        "min": ArchConfig.min(SPACE),
        "random": ArchConfig.sample(SPACE, random.Random(11)),
    }[which]
    static = extract(net, arch)
    r = arch.resolution
    inputs = [torch.randn(4, 3, r, r), torch.rand(2, 3, r, r)]
    exported = export_onnx(static, metadata(arch), inputs)
    assert exported.max_abs_diff <= 1e-4
    model = onnx.load_from_string(exported.onnx_bytes)
    assert model.opset_import[0].version >= 17
    onnx.checker.check_model(model, full_check=True)
    meta = read_metadata(exported.onnx_bytes)
    assert meta["arch"] == str(arch)
    assert meta["supernet_version"] == "abc123"
    assert meta["input_shape"] == f"[1, 3, {r}, {r}]"
    assert meta["params"] == str(sum(p.numel() for p in static.parameters()))
    assert "mean" in meta["normalization"] and '"9"' in meta["classes"]


def test_export_is_deterministic():
    static = extract(perturbed_supernet(), ArchConfig.min(SPACE))
    inputs = [torch.randn(1, 3, 24, 24)]
    first = export_onnx(static, metadata(ArchConfig.min(SPACE)), inputs)
    second = export_onnx(static, metadata(ArchConfig.min(SPACE)), inputs)
    assert first.sha256 == second.sha256


def test_verification_catches_a_mismatch():
    arch = ArchConfig.min(SPACE)
    static = extract(perturbed_supernet(), arch)
    inputs = [torch.randn(2, 3, 24, 24)]
    exported = export_onnx(static, metadata(arch), inputs)
    with torch.no_grad():
        static.head.classifier.bias.add_(0.01)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        verify_onnx(exported.onnx_bytes, static, inputs, 1e-4)


def test_verification_refuses_a_network_with_non_finite_logits():
    """NaN compares as neither bigger nor smaller: unchecked, it passed any tolerance."""
    arch = ArchConfig.min(SPACE)
    static = extract(perturbed_supernet(), arch)
    inputs = [torch.randn(2, 3, 24, 24)]
    exported = export_onnx(static, metadata(arch), inputs)
    with torch.no_grad():
        static.head.classifier.bias.fill_(float("nan"))
    with pytest.raises(ExportError, match="non-finite logits"):
        verify_onnx(exported.onnx_bytes, static, inputs, 1e-4)


def test_verification_rejects_garbage():
    static = extract(perturbed_supernet(), ArchConfig.min(SPACE))
    with pytest.raises((ExportError, Exception)):
        verify_onnx(b"not a model", static, [torch.randn(1, 3, 24, 24)], 1e-4)


@pytest.mark.parametrize(
    "space",
    [SPACE, mobilenet_v3_imagenet_space(), mobilenet_v3_imagenet_space(1.2)],
    ids=["default", "imagenet-w1.0", "imagenet-w1.2"],
)
def test_a_networks_layers_read_from_its_modules_are_its_archs_layers(space):
    """The export walks `StaticNet.layers`; the predictors price `subnet_layers`."""
    supernet = OFASupernet(space, 3, 7)
    rng = random.Random(5)
    for arch in [ArchConfig.max(space), ArchConfig.min(space)] + [
        ArchConfig.sample(space, rng) for _ in range(4)
    ]:
        net = extract(supernet, arch)
        assert net.layers(arch.resolution) == subnet_layers(space, arch, 3, 7)


def test_the_export_folds_every_batchnorm_and_matches_pytorch_in_train_statistics():
    """Statistics far from the identity (the perturbed supernet's) are what folding has
    to get right: a wrong scale or shift is far past the tolerance."""
    arch = ArchConfig.sample(SPACE, random.Random(3))
    static = extract(perturbed_supernet(), arch)
    r = arch.resolution
    exported = export_onnx(static, metadata(arch), [torch.randn(8, 3, r, r)])
    model = onnx.load_from_string(exported.onnx_bytes)
    assert "BatchNormalization" not in {node.op_type for node in model.graph.node}
    assert exported.max_abs_diff <= 1e-4
    # Any batch size: the batch dimension is symbolic at both ends.
    session = ort.InferenceSession(exported.onnx_bytes, providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": torch.randn(3, 3, r, r).numpy()})
    assert logits.shape == (3, 10)


def test_a_network_whose_weights_do_not_follow_its_layers_is_refused():
    arch = ArchConfig.min(SPACE)
    static = extract(perturbed_supernet(), arch)
    first = static.blocks[0]
    # A projection sliced for a narrower block than its expansion (an extraction fault).
    first.project = torch.nn.Conv2d(
        first.expand.out_channels - 8, first.project.out_channels, 1, bias=False
    )
    r = arch.resolution
    needs = r"weight 10 does not follow its layers: the graph needs shape \(24, 48, 1, 1\)"
    with pytest.raises(ExportError, match=needs):
        export_onnx(static, metadata(arch), [torch.randn(2, 3, r, r)])
