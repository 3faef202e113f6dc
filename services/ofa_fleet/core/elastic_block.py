"""The elastic inverted-residual block (MobileNetV3's MBConv) of the supernet."""

from __future__ import annotations

import torch
from torch import nn

from ofa_fleet.core.arch import BlockChoice
from ofa_fleet.core.elastic_ops import (
    ElasticBatchNorm,
    ElasticDepthwiseConv,
    ElasticPointwiseConv,
    ElasticSqueezeExcite,
    activation,
)
from ofa_fleet.core.space import SearchSpace, StageSpec


class ElasticMBConv(nn.Module):
    """1x1 expand -> kxk depthwise -> (SE) -> 1x1 project, every part elastic.

    Sized for the largest choice; a `BlockChoice` passed to `forward` selects the
    kernel size and hidden width of this call.
    """

    def __init__(self, space: SearchSpace, in_channels: int, stage: StageSpec, stride: int) -> None:
        super().__init__()
        self.space = space
        self.in_channels = in_channels
        self.out_channels = stage.width
        self.stride = stride
        self.use_residual = stride == 1 and in_channels == stage.width
        max_mid = space.mid_channels(in_channels, space.expand_ratios[-1])
        self.expand = ElasticPointwiseConv(in_channels, max_mid)
        self.expand_bn = ElasticBatchNorm(max_mid)
        self.depthwise = ElasticDepthwiseConv(max_mid, space.kernel_sizes, stride)
        self.depthwise_bn = ElasticBatchNorm(max_mid)
        self.act = activation(stage.activation)
        self.se = (
            ElasticSqueezeExcite(max_mid, space.se_reduction, space.channel_divisor)
            if stage.use_se
            else None
        )
        self.project = ElasticPointwiseConv(max_mid, stage.width)
        self.project_bn = ElasticBatchNorm(stage.width)

    def mid_channels(self, expand_ratio: int) -> int:
        return self.space.mid_channels(self.in_channels, expand_ratio)

    def forward(self, x: torch.Tensor, choice: BlockChoice) -> torch.Tensor:
        # x: (B, in, H, W) -> (B, out, H/stride, W/stride)
        mid = self.mid_channels(choice.expand)
        out = self.act(self.expand_bn(self.expand(x, mid)))
        out = self.act(self.depthwise_bn(self.depthwise(out, choice.kernel)))
        if self.se is not None:
            out = self.se(out)
        out = self.project_bn(self.project(out, self.out_channels))
        return out + x if self.use_residual else out

    @torch.no_grad()
    def sort_channels_by_importance(self) -> None:
        """Reorder hidden channels so the most important come first (OFA's width step).

        Importance of a hidden channel is the L1 norm of the projection weights reading
        it. Every tensor indexed by hidden channel is permuted alike, so the block
        computes the same function before and after; what changes is which channels a
        narrower subnet keeps.
        """
        order = torch.argsort(self.project.weight.abs().sum(dim=(0, 2, 3)), descending=True)
        self.expand.weight.copy_(self.expand.weight[order])
        _permute_bn(self.expand_bn, order)
        self.depthwise.weight.copy_(self.depthwise.weight[order])
        _permute_bn(self.depthwise_bn, order)
        self.project.weight.copy_(self.project.weight[:, order])
        if self.se is not None:
            se = self.se
            se.reduce.weight.copy_(se.reduce.weight[:, order])
            se.expand.weight.copy_(se.expand.weight[order])
            assert se.expand.bias is not None
            se.expand.bias.copy_(se.expand.bias[order])
            # The SE's own hidden units, by the L1 norm of the weights reading them.
            se_order = torch.argsort(se.expand.weight.abs().sum(dim=(0, 2, 3)), descending=True)
            se.reduce.weight.copy_(se.reduce.weight[se_order])
            assert se.reduce.bias is not None
            se.reduce.bias.copy_(se.reduce.bias[se_order])
            se.expand.weight.copy_(se.expand.weight[:, se_order])


def _permute_bn(norm: ElasticBatchNorm, order: torch.Tensor) -> None:
    bn = norm.bn
    bn.weight.copy_(bn.weight[order])
    bn.bias.copy_(bn.bias[order])
    assert bn.running_mean is not None and bn.running_var is not None
    bn.running_mean.copy_(bn.running_mean[order])
    bn.running_var.copy_(bn.running_var[order])
