"""The search space: which architectures exist, described as configuration.

The space fixes the *shape* of the supernet (stem, stage widths and strides, head) and the
*choices* each subnet makes (kernel size and expand ratio per block, depth per stage,
input resolution). Everything downstream -- supernet, extraction, predictors, search --
reads it from here, so an ImageNet-sized space is the same code with another value.

The default is sized for CPUs at 32x32: the stem and first stage downsample early, as
depthwise convolutions at full resolution dominate CPU training time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ofa_fleet.errors import InvalidArgumentError

ACTIVATIONS = ("relu", "hswish")


@dataclass(frozen=True)
class StageSpec:
    """One stage of elastic inverted-residual blocks.

    Attributes:
        width: output channels of every block in the stage.
        stride: stride of the stage's first block (the others use 1).
        activation: ``"relu"`` or ``"hswish"``, as MobileNetV3 mixes both.
        use_se: whether blocks carry squeeze-and-excitation.
    """

    width: int
    stride: int
    activation: str = "hswish"
    use_se: bool = False

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise InvalidArgumentError(f"stage width must be positive, got {self.width}")
        if self.stride not in (1, 2):
            raise InvalidArgumentError(f"stage stride must be 1 or 2, got {self.stride}")
        if self.activation not in ACTIVATIONS:
            raise InvalidArgumentError(
                f"stage activation must be one of {list(ACTIVATIONS)}, got {self.activation!r}"
            )


@dataclass(frozen=True)
class SearchSpace:
    """Shape of the supernet and the choices a subnet makes within it.

    Attributes:
        stem_width: channels of the 3x3 stem convolution.
        stem_stride: stride of the stem.
        first_block_width: output channels of the fixed depthwise-separable block after
            the stem (MobileNetV3's first block, not elastic).
        stages: the elastic stages, in order.
        head_width: channels of the final 1x1 expansion before global pooling.
        feature_width: channels of the 1x1 feature-mix layer after pooling (0: none).
        kernel_sizes: depthwise kernel choices per block; odd, ascending.
        expand_ratios: expand-ratio choices per block; ascending.
        depths: blocks-per-stage choices; ascending.
        resolutions: input resolution choices; ascending.
        se_reduction: squeeze-and-excitation reduction factor.
        channel_divisor: channel counts are rounded to a multiple of this.
    """

    stem_width: int = 16
    stem_stride: int = 2
    first_block_width: int = 16
    stages: tuple[StageSpec, ...] = (
        StageSpec(24, 2, "relu"),
        StageSpec(32, 2, "relu"),
        StageSpec(48, 1, "hswish", use_se=True),
        StageSpec(64, 1, "hswish", use_se=True),
    )
    head_width: int = 256
    feature_width: int = 512
    kernel_sizes: tuple[int, ...] = (3, 5, 7)
    expand_ratios: tuple[int, ...] = (3, 4, 6)
    depths: tuple[int, ...] = (2, 3, 4)
    resolutions: tuple[int, ...] = (24, 28, 32)
    se_reduction: int = 4
    channel_divisor: int = 8
    _fingerprint: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("kernel_sizes", "expand_ratios", "depths", "resolutions"):
            values = getattr(self, name)
            if not values or list(values) != sorted(set(values)) or min(values) <= 0:
                raise InvalidArgumentError(
                    f"search space {name} must be distinct positive ascending values, "
                    f"got {list(values)}"
                )
        if any(k % 2 == 0 for k in self.kernel_sizes):
            raise InvalidArgumentError(f"kernel sizes must be odd, got {list(self.kernel_sizes)}")
        if not self.stages:
            raise InvalidArgumentError("search space needs at least one stage")
        for name in ("stem_width", "first_block_width", "head_width", "channel_divisor"):
            if getattr(self, name) <= 0:
                raise InvalidArgumentError(f"search space {name} must be positive")
        if self.feature_width < 0:
            raise InvalidArgumentError("search space feature_width must be >= 0")
        object.__setattr__(self, "_fingerprint", _digest(self.to_dict()))

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def max_depth(self) -> int:
        return self.depths[-1]

    @property
    def fingerprint(self) -> str:
        """Short hash of the space, stored with checkpoints and latency tables."""
        return self._fingerprint

    def mid_channels(self, in_channels: int, expand_ratio: int) -> int:
        """Hidden width of an inverted-residual block, as OFA rounds it."""
        return make_divisible(in_channels * expand_ratio, self.channel_divisor)

    def se_channels(self, mid_channels: int) -> int:
        return make_divisible(mid_channels // self.se_reduction, self.channel_divisor)

    def stage_input_width(self, stage: int) -> int:
        return self.first_block_width if stage == 0 else self.stages[stage - 1].width

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_fingerprint")
        data["stages"] = [asdict(s) for s in self.stages]
        for key in ("kernel_sizes", "expand_ratios", "depths", "resolutions"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpace:
        known = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        unknown = set(data) - known
        if unknown:
            raise InvalidArgumentError(
                f"unknown search space fields {sorted(unknown)}; allowed: {sorted(known)}"
            )
        values = dict(data)
        if "stages" in values:
            values["stages"] = tuple(StageSpec(**s) for s in values["stages"])
        for key in ("kernel_sizes", "expand_ratios", "depths", "resolutions"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def make_divisible(value: float, divisor: int) -> int:
    """Round to the nearest multiple of ``divisor``, never dropping below 90% of it.

    MobileNet's rule: channel counts that are multiples of 8 run faster on most hardware.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def cpu_space() -> SearchSpace:
    """The default space: trains at a few hundred images/s on two CPU cores at 32x32."""
    return SearchSpace()


# OFA's MobileNetV3 widths at 1.0x: stem, first block, the five stages, head, feature mix.
MOBILENET_V3_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)


def mobilenet_v3_imagenet_space(width_mult: float = 1.0) -> SearchSpace:
    """OFA's MobileNetV3 space at ImageNet scale; ``width_mult`` scales every width as
    OFA's `OFAMobileNetV3(width_mult=...)` does (1.2: the published w1.2 supernet)."""
    stem, first, *stages, head, feature = (
        make_divisible(width * width_mult, 8) for width in MOBILENET_V3_WIDTHS
    )
    return SearchSpace(
        stem_width=stem,
        stem_stride=2,
        first_block_width=first,
        stages=(
            StageSpec(stages[0], 2, "relu"),
            StageSpec(stages[1], 2, "relu", use_se=True),
            StageSpec(stages[2], 2, "hswish"),
            StageSpec(stages[3], 1, "hswish", use_se=True),
            StageSpec(stages[4], 2, "hswish", use_se=True),
        ),
        head_width=head,
        feature_width=feature,
        resolutions=(160, 176, 192, 208, 224),
    )


PRESETS = {"cpu": cpu_space, "mobilenet-v3-imagenet": mobilenet_v3_imagenet_space}
