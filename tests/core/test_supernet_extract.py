"""Parity: the supernet in a config, the extracted static subnet, and their pieces."""

import random

import pytest
import torch
from torch import nn

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.bn_calibration import recalibrate_batchnorm
from ofa_fleet.core.complexity import complexity
from ofa_fleet.core.elastic_ops import ElasticDepthwiseConv
from ofa_fleet.core.extract import extract
from ofa_fleet.core.space import SearchSpace, StageSpec
from ofa_fleet.core.supernet import OFASupernet
from ofa_fleet.errors import InvalidArchError, InvalidArgumentError

SPACE = SearchSpace()


def perturbed_supernet(space: SearchSpace = SPACE, seed: int = 0) -> OFASupernet:
    """A supernet whose statistics and transforms are far from their initial values."""
    torch.manual_seed(seed)
    net = OFASupernet(space, 3, 10)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
        for name, param in net.named_parameters():
            if "transforms" in name:
                param.add_(0.05 * torch.randn_like(param))
    return net.eval()


def archs_under_test(space: SearchSpace = SPACE) -> list[ArchConfig]:
    rng = random.Random(7)
    return [ArchConfig.max(space), ArchConfig.min(space)] + [
        ArchConfig.sample(space, rng) for _ in range(4)
    ]


@pytest.mark.parametrize("index", range(6))
def test_extracted_subnet_matches_supernet_in_that_config(index):
    net = perturbed_supernet()
    arch = archs_under_test()[index]
    x = torch.randn(3, 3, arch.resolution, arch.resolution)
    static = extract(net, arch)
    with torch.no_grad():
        assert torch.allclose(net(x, arch), static(x), atol=1e-5)


def test_extraction_copies_weights():
    net = perturbed_supernet()
    arch = ArchConfig.max(SPACE)
    static = extract(net, arch)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = static(x)
        for param in net.parameters():
            param.add_(1.0)
        assert torch.equal(before, static(x))


def test_complexity_matches_extracted_module():
    net = perturbed_supernet()
    for arch in archs_under_test():
        static = extract(net, arch)
        counted = complexity(SPACE, arch, 3, 10)
        assert counted.params == sum(p.numel() for p in static.parameters())
        assert counted.macs == hook_macs(static, arch.resolution)


def hook_macs(model: nn.Module, resolution: int) -> int:
    total = 0

    def on_conv(module, inputs, output):
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * (module.in_channels // module.groups) * k

    def on_linear(module, inputs, output):
        nonlocal total
        total += module.in_features * module.out_features

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(on_conv)
        elif isinstance(module, nn.Linear):
            module.register_forward_hook(on_linear)
    with torch.no_grad():
        model(torch.zeros(1, 3, resolution, resolution))
    return total


def test_kernel_transform_starts_as_centre_crop():
    conv = ElasticDepthwiseConv(8, (3, 5, 7), 1)
    full = conv.kernel(7)
    assert torch.equal(conv.kernel(5), full[:, :, 1:6, 1:6])
    assert torch.equal(conv.kernel(3), full[:, :, 2:5, 2:5])


def test_kernel_transform_is_learned_not_a_crop():
    conv = ElasticDepthwiseConv(8, (3, 5, 7), 1)
    with torch.no_grad():
        conv.transforms[1].add_(0.1)
    assert not torch.allclose(conv.kernel(5), conv.kernel(7)[:, :, 1:6, 1:6])
    # 3x3 is derived from the transformed 5x5, so it changes too
    assert not torch.allclose(conv.kernel(3), conv.kernel(7)[:, :, 2:5, 2:5])
    loss = conv(torch.randn(1, 8, 9, 9), 3).sum()
    loss.backward()
    assert conv.transforms[0].grad is not None and conv.transforms[1].grad is not None


def test_channel_sorting_keeps_function_and_puts_important_channels_first():
    net = perturbed_supernet()
    arch = ArchConfig.max(SPACE)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = net(x, arch)
        net.sort_channels_by_importance()
        after = net(x, arch)
    assert torch.allclose(before, after, atol=1e-5)
    for stage in net.elastic_stages:
        importance = stage.all_blocks()[0].project.weight.abs().sum(dim=(0, 2, 3))
        assert torch.all(importance[:-1] >= importance[1:])


def test_supernet_refuses_wrong_resolution_and_foreign_arch():
    net = perturbed_supernet()
    with pytest.raises(InvalidArgumentError, match="expects 24x24"):
        net(torch.zeros(1, 3, 32, 32), ArchConfig.min(SPACE))
    other = SearchSpace(stages=(StageSpec(16, 2),))
    with pytest.raises(InvalidArchError):
        net(torch.zeros(1, 3, 32, 32), ArchConfig.max(other))


def test_bn_recalibration_sets_statistics_to_the_data():
    net = perturbed_supernet()
    arch = ArchConfig.min(SPACE)
    static = extract(net, arch)
    batches = [torch.randn(16, 3, 24, 24) * 3 + 2 for _ in range(4)]
    recalibrate_batchnorm(static, batches)
    assert not static.training
    stem_bn = static.stem.bn
    with torch.no_grad():
        conv_out = torch.cat([static.stem.conv(b) for b in batches])
    expected_mean = conv_out.mean(dim=(0, 2, 3))
    assert torch.allclose(stem_bn.running_mean, expected_mean, atol=1e-4)
    assert stem_bn.momentum == 0.1  # restored


def test_bn_recalibration_needs_data():
    static = extract(perturbed_supernet(), ArchConfig.min(SPACE))
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate_batchnorm(static, [])


def test_imagenet_sized_space_is_the_same_code():
    from ofa_fleet.core.space import mobilenet_v3_imagenet_space

    space = mobilenet_v3_imagenet_space()
    net = OFASupernet(space, 3, 1000).eval()
    arch = ArchConfig.min(space)
    x = torch.randn(1, 3, arch.resolution, arch.resolution)
    with torch.no_grad():
        assert torch.allclose(net(x, arch), extract(net, arch)(x), atol=1e-5)
    assert complexity(space, arch, 3, 1000).params == sum(
        p.numel() for p in extract(net, arch).parameters()
    )
