"""Exact MACs and parameter counts of a subnet, from its arch alone.

Predictors and search need these for thousands of candidates a second, so they are
computed by arithmetic over the search space, never by building a module. Tests check
the arithmetic against modules built by `extract`.

MACs count multiply-accumulates of convolutions and the classifier (BatchNorm,
activations and pooling are left out, as OFA and most papers count them).
"""

from __future__ import annotations

from dataclasses import dataclass

from ofa_fleet.core.arch import ArchConfig, validate
from ofa_fleet.core.space import SearchSpace


@dataclass(frozen=True)
class Complexity:
    macs: int
    params: int


def conv_output_size(size: int, stride: int) -> int:
    """Spatial size after a 'same'-padded odd-kernel convolution."""
    return (size - 1) // stride + 1


def complexity(
    space: SearchSpace, arch: ArchConfig, in_channels: int, num_classes: int
) -> Complexity:
    """MACs at ``arch.resolution`` and trainable parameters of subnet ``arch``."""
    validate(arch, space)
    size = conv_output_size(arch.resolution, space.stem_stride)
    area = size * size
    stem, first = space.stem_width, space.first_block_width
    macs = in_channels * stem * 9 * area + stem * 9 * area + stem * first * area
    params = in_channels * stem * 9 + 2 * stem + stem * 9 + 2 * stem + stem * first + 2 * first
    channels = first
    for stage_spec, stage in zip(space.stages, arch.stages, strict=True):
        for index, block in enumerate(stage):
            stride = stage_spec.stride if index == 0 else 1
            out_size = conv_output_size(size, stride)
            out_area = out_size * out_size
            mid = space.mid_channels(channels, block.expand)
            k2 = block.kernel * block.kernel
            macs += channels * mid * area + mid * k2 * out_area + mid * stage_spec.width * out_area
            params += channels * mid + 2 * mid + mid * k2 + 2 * mid
            params += mid * stage_spec.width + 2 * stage_spec.width
            if stage_spec.use_se:
                hidden = space.se_channels(mid)
                macs += 2 * mid * hidden
                params += 2 * mid * hidden + hidden + mid
            channels, size, area = stage_spec.width, out_size, out_area
    macs += channels * space.head_width * area
    params += channels * space.head_width + 2 * space.head_width
    features = space.head_width
    if space.feature_width:
        macs += space.head_width * space.feature_width
        params += space.head_width * space.feature_width
        features = space.feature_width
    macs += features * num_classes
    params += features * num_classes + num_classes
    return Complexity(macs=macs, params=params)
