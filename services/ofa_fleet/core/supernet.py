"""The OFA supernet: every subnet of a search space in one set of weights.

``supernet(x, arch)`` runs subnet ``arch`` on ``x``. The arch is an argument, never
stored state, so concurrent callers cannot see each other's subnet.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from ofa_fleet.core.arch import ArchConfig, BlockChoice, validate
from ofa_fleet.core.elastic_block import ElasticMBConv
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import InvalidArgumentError


class FirstBlock(nn.Module):
    """MobileNetV3's fixed first block: depthwise 3x3 then 1x1 projection (expand 1)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, 1, 1, groups=in_channels, bias=False
        )
        self.depthwise_bn = nn.BatchNorm2d(in_channels)
        self.act = nn.ReLU()
        self.project = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(out_channels)
        self.use_residual = in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.depthwise_bn(self.depthwise(x)))
        out = self.project_bn(self.project(out))
        return out + x if self.use_residual else out


class Stem(nn.Module):
    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.act = nn.Hardswish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Head(nn.Module):
    """Final 1x1 expansion, global pooling, feature mix and classifier."""

    def __init__(
        self, in_channels: int, space: SearchSpace, num_classes: int, dropout: float
    ) -> None:
        super().__init__()
        self.expand = nn.Conv2d(in_channels, space.head_width, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(space.head_width)
        self.act = nn.Hardswish()
        features = space.feature_width or space.head_width
        self.feature_mix = (
            nn.Conv2d(space.head_width, space.feature_width, 1, bias=False)
            if space.feature_width
            else None
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.expand_bn(self.expand(x)))  # (B, head, h, w)
        out = out.mean((2, 3), keepdim=True)  # (B, head, 1, 1)
        if self.feature_mix is not None:
            out = self.act(self.feature_mix(out))
        return self.classifier(self.dropout(torch.flatten(out, 1)))


class ElasticStage(nn.Module):
    """The blocks of one stage; a subnet of depth D runs the first D of them."""

    def __init__(self, space: SearchSpace, index: int) -> None:
        super().__init__()
        spec = space.stages[index]
        self.blocks = nn.ModuleList(
            ElasticMBConv(
                space,
                space.stage_input_width(index) if b == 0 else spec.width,
                spec,
                spec.stride if b == 0 else 1,
            )
            for b in range(space.max_depth)
        )

    def active(self, choices: tuple[BlockChoice, ...]) -> list[tuple[ElasticMBConv, BlockChoice]]:
        """The first ``len(choices)`` blocks, each with its choice (elastic depth)."""
        return [(cast(ElasticMBConv, self.blocks[i]), c) for i, c in enumerate(choices)]

    def all_blocks(self) -> list[ElasticMBConv]:
        return [cast(ElasticMBConv, block) for block in self.blocks]

    def forward(self, x: torch.Tensor, choices: tuple[BlockChoice, ...]) -> torch.Tensor:
        for block, choice in self.active(choices):
            x = block(x, choice)
        return x


class OFASupernet(nn.Module):
    """Elastic MobileNetV3-style network covering a whole `SearchSpace`."""

    def __init__(
        self,
        space: SearchSpace,
        in_channels: int = 3,
        num_classes: int = 10,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.space = space
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.dropout = dropout
        self.stem = Stem(in_channels, space.stem_width, space.stem_stride)
        self.first_block = FirstBlock(space.stem_width, space.first_block_width)
        self.stages = nn.ModuleList(ElasticStage(space, s) for s in range(space.num_stages))
        self.head = Head(space.stages[-1].width, space, num_classes, dropout)

    def forward(self, x: torch.Tensor, arch: ArchConfig) -> torch.Tensor:
        # x: (B, in_channels, r, r) with r == arch.resolution -> logits (B, num_classes)
        validate(arch, self.space)
        if x.shape[-2:] != (arch.resolution, arch.resolution):
            raise InvalidArgumentError(
                f"input is {tuple(x.shape[-2:])} but arch {arch} expects "
                f"{arch.resolution}x{arch.resolution}; resize the batch first"
            )
        out = self.first_block(self.stem(x))
        for stage, choices in zip(self.elastic_stages, arch.stages, strict=True):
            out = stage(out, choices)
        return self.head(out)

    @property
    def elastic_stages(self) -> list[ElasticStage]:
        return [cast(ElasticStage, stage) for stage in self.stages]

    def sort_channels_by_importance(self) -> None:
        """Prepare elastic width: see `ElasticMBConv.sort_channels_by_importance`."""
        for stage in self.elastic_stages:
            for block in stage.all_blocks():
                block.sort_channels_by_importance()
