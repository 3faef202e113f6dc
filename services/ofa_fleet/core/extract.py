"""Subnet extraction: a pure function from (supernet, arch) to a static network.

The result holds *copies* of the sliced weights, so training or sorting the supernet
later never changes a model already extracted (or shipped).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ofa_fleet.core.arch import ArchConfig, validate
from ofa_fleet.core.elastic_block import ElasticMBConv
from ofa_fleet.core.elastic_ops import ElasticBatchNorm
from ofa_fleet.core.static_net import MBConv, SqueezeExcite, StaticNet
from ofa_fleet.core.supernet import OFASupernet


@torch.no_grad()
def extract(supernet: OFASupernet, arch: ArchConfig) -> StaticNet:
    """Return subnet ``arch`` of ``supernet`` as a `StaticNet` in eval mode.

    BatchNorm statistics are the supernet's, sliced; call `recalibrate_batchnorm` on the
    result to give it statistics of its own (what a shipped model should carry).
    """
    validate(arch, supernet.space)
    blocks = []
    for stage, choices in zip(supernet.elastic_stages, arch.stages, strict=True):
        for elastic, choice in stage.active(choices):
            blocks.append(_extract_block(elastic, choice.kernel, choice.expand))
    net = StaticNet(
        copy.deepcopy(supernet.stem),
        copy.deepcopy(supernet.first_block),
        blocks,
        copy.deepcopy(supernet.head),
    )
    return net.eval()


def _extract_block(elastic: ElasticMBConv, kernel: int, expand: int) -> MBConv:
    mid = elastic.mid_channels(expand)
    activation_name = "relu" if isinstance(elastic.act, nn.ReLU) else "hswish"
    se_hidden = elastic.se.hidden_channels(mid) if elastic.se is not None else None
    block = MBConv(
        elastic.in_channels,
        mid,
        elastic.out_channels,
        kernel,
        elastic.stride,
        activation_name,
        se_hidden,
    )
    block.expand.weight.copy_(elastic.expand.weight[:mid])
    _copy_bn(block.expand_bn, elastic.expand_bn, mid)
    block.depthwise.weight.copy_(elastic.depthwise.kernel(kernel)[:mid])
    _copy_bn(block.depthwise_bn, elastic.depthwise_bn, mid)
    if elastic.se is not None and se_hidden is not None:
        _copy_se(block.se, elastic, mid, se_hidden)
    block.project.weight.copy_(elastic.project.weight[:, :mid])
    _copy_bn(block.project_bn, elastic.project_bn, elastic.out_channels)
    return block


def _copy_se(target: SqueezeExcite | None, elastic: ElasticMBConv, mid: int, hidden: int) -> None:
    assert target is not None and elastic.se is not None
    source = elastic.se
    assert source.reduce.bias is not None and source.expand.bias is not None
    assert target.reduce.bias is not None and target.expand.bias is not None
    target.reduce.weight.copy_(source.reduce.weight[:hidden, :mid])
    target.reduce.bias.copy_(source.reduce.bias[:hidden])
    target.expand.weight.copy_(source.expand.weight[:mid, :hidden])
    target.expand.bias.copy_(source.expand.bias[:mid])


def _copy_bn(target: nn.BatchNorm2d, source: ElasticBatchNorm, channels: int) -> None:
    bn = source.bn
    assert bn.running_mean is not None and bn.running_var is not None
    assert target.running_mean is not None and target.running_var is not None
    target.weight.copy_(bn.weight[:channels])
    target.bias.copy_(bn.bias[:channels])
    target.running_mean.copy_(bn.running_mean[:channels])
    target.running_var.copy_(bn.running_var[:channels])
    target.eps = bn.eps
    target.momentum = bn.momentum
