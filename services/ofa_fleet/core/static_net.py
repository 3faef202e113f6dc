"""Plain static networks: what a device runs once a subnet is extracted.

No elastic logic, no arch argument: ordinary convolutions holding sliced copies of the
supernet's weights, so the module exports to ONNX as a small, fixed graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ofa_fleet.core.complexity import conv_output_size
from ofa_fleet.core.elastic_ops import activation
from ofa_fleet.core.layers import Layer
from ofa_fleet.core.supernet import FirstBlock, Head, Stem


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.relu(self.reduce(x.mean((2, 3), keepdim=True)))
        return x * F.hardsigmoid(self.expand(scale))


class MBConv(nn.Module):
    """A fixed inverted-residual block: 1x1 expand, kxk depthwise, (SE), 1x1 project."""

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        act: str,
        se_hidden: int | None,
    ) -> None:
        super().__init__()
        self.expand = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(mid_channels)
        self.depthwise = nn.Conv2d(
            mid_channels,
            mid_channels,
            kernel_size,
            stride,
            kernel_size // 2,
            groups=mid_channels,
            bias=False,
        )
        self.depthwise_bn = nn.BatchNorm2d(mid_channels)
        self.act = activation(act)
        self.se = SqueezeExcite(mid_channels, se_hidden) if se_hidden else None
        self.project = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(out_channels)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.expand_bn(self.expand(x)))
        out = self.act(self.depthwise_bn(self.depthwise(out)))
        if self.se is not None:
            out = self.se(out)
        out = self.project_bn(self.project(out))
        return out + x if self.use_residual else out


class StaticNet(nn.Module):
    """Stem, first block, a flat sequence of `MBConv` blocks, head."""

    def __init__(self, stem: Stem, first_block: FirstBlock, blocks: list[MBConv], head: Head):
        super().__init__()
        self.stem = stem
        self.first_block = first_block
        self.blocks = nn.Sequential(*blocks)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C, r, r) -> logits (B, classes)
        return self.head(self.blocks(self.first_block(self.stem(x))))

    def layers(self, resolution: int) -> list[Layer]:
        """This network as `Layer` descriptions at ``resolution``, read from its modules:
        the walk `core.export` builds the ONNX graph by (equal to `subnet_layers` of the
        arch it was extracted as; a test holds them together)."""
        stem, first, head = self.stem, self.first_block, self.head
        size = resolution
        layers = [
            Layer(
                "stem",
                stem.conv.in_channels,
                stem.conv.out_channels,
                0,
                _pair(stem.conv.kernel_size),
                _pair(stem.conv.stride),
                size,
                _activation_name(stem.act),
            )
        ]
        size = conv_output_size(size, _pair(stem.conv.stride))
        layers.append(
            Layer(
                "first",
                first.depthwise.in_channels,
                first.project.out_channels,
                0,
                _pair(first.depthwise.kernel_size),
                1,
                size,
                _activation_name(first.act),
            )
        )
        for block in self.blocks:
            assert isinstance(block, MBConv)
            stride = _pair(block.depthwise.stride)
            layers.append(
                Layer(
                    "mbconv",
                    block.expand.in_channels,
                    block.project.out_channels,
                    block.expand.out_channels,
                    _pair(block.depthwise.kernel_size),
                    stride,
                    size,
                    _activation_name(block.act),
                    block.se.reduce.out_channels if block.se is not None else 0,
                )
            )
            size = conv_output_size(size, stride)
        layers.append(
            Layer(
                "head",
                head.expand.in_channels,
                head.classifier.out_features,
                head.expand.out_channels,
                1,
                1,
                size,
                _activation_name(head.act),
                feature_width=head.feature_mix.out_channels if head.feature_mix else 0,
            )
        )
        return layers


def _pair(value: int | tuple[int, ...]) -> int:
    """A square kernel's or stride's one number."""
    return value if isinstance(value, int) else value[0]


def _activation_name(module: nn.Module) -> str:
    return "relu" if isinstance(module, nn.ReLU) else "hswish"
