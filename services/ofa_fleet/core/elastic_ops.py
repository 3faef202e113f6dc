"""Elastic operators: one set of weights that serves every smaller setting.

Each operator takes its active setting as a forward argument (never as stored state), so
many subnets can run through one supernet concurrently without racing on a mode flag.

- kernel: a 7x7 depthwise kernel's centre 5x5, multiplied by a learned 25x25 matrix,
  serves as the 5x5 kernel; the 5x5's centre 3x3 through a 9x9 matrix serves as 3x3
  (OFA's kernel transformation). The matrices start as identity.
- width: the first ``C`` channels of every weight and statistic are the active ones;
  `sort_channels_by_importance` on a block makes the first ones the most important.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ofa_fleet.core.space import make_divisible


class ElasticDepthwiseConv(nn.Module):
    """Depthwise convolution whose kernel size is chosen per call."""

    def __init__(self, channels: int, kernel_sizes: tuple[int, ...], stride: int) -> None:
        super().__init__()
        self.kernel_sizes = tuple(sorted(kernel_sizes))
        self.stride = stride
        k_max = self.kernel_sizes[-1]
        self.weight = nn.Parameter(torch.empty(channels, 1, k_max, k_max))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        # One transform per step down: index i maps kernel_sizes[i+1] -> kernel_sizes[i].
        self.transforms = nn.ParameterList(
            nn.Parameter(torch.eye(k * k)) for k in self.kernel_sizes[:-1]
        )

    def kernel(self, kernel_size: int) -> torch.Tensor:
        """The full-width depthwise weight at ``kernel_size``, shape (C, 1, k, k)."""
        weight = self.weight
        for index in range(len(self.kernel_sizes) - 2, -1, -1):
            if self.kernel_sizes[index + 1] == kernel_size:
                break
            k = self.kernel_sizes[index]
            start = (weight.shape[-1] - k) // 2
            centre = weight[:, :, start : start + k, start : start + k]
            flat = centre.reshape(-1, k * k) @ self.transforms[index]  # (C, k*k)
            weight = flat.reshape(weight.shape[0], 1, k, k)
        return weight

    def forward(self, x: torch.Tensor, kernel_size: int) -> torch.Tensor:
        channels = x.shape[1]
        weight = self.kernel(kernel_size)[:channels]
        return F.conv2d(x, weight, None, self.stride, kernel_size // 2, 1, channels)


class ElasticPointwiseConv(nn.Module):
    """1x1 convolution over the first ``in`` channels, producing the first ``out``."""

    def __init__(self, in_max: int, out_max: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_max, in_max, 1, 1))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.bias = nn.Parameter(torch.zeros(out_max)) if bias else None

    def forward(self, x: torch.Tensor, out_channels: int) -> torch.Tensor:
        weight = self.weight[:out_channels, : x.shape[1]]
        bias = None if self.bias is None else self.bias[:out_channels]
        return F.conv2d(x, weight, bias)


class ElasticBatchNorm(nn.Module):
    """BatchNorm whose statistics and affine terms are sliced to the input's channels."""

    def __init__(self, max_channels: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(max_channels, momentum=momentum, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        bn = self.bn
        if channels == bn.num_features:
            return bn(x)
        # Slices are views: running statistics update in place for the active channels.
        return F.batch_norm(
            x,
            bn.running_mean[:channels] if bn.running_mean is not None else None,
            bn.running_var[:channels] if bn.running_var is not None else None,
            bn.weight[:channels],
            bn.bias[:channels],
            self.training or not bn.track_running_stats,
            bn.momentum if bn.momentum is not None else 0.0,
            bn.eps,
        )


class ElasticSqueezeExcite(nn.Module):
    """Squeeze-and-excitation whose hidden width follows the active channel count."""

    def __init__(self, max_channels: int, reduction: int, divisor: int) -> None:
        super().__init__()
        self.reduction = reduction
        self.divisor = divisor
        hidden = make_divisible(max_channels // reduction, divisor)
        self.reduce = ElasticPointwiseConv(max_channels, hidden, bias=True)
        self.expand = ElasticPointwiseConv(hidden, max_channels, bias=True)

    def hidden_channels(self, channels: int) -> int:
        return make_divisible(channels // self.reduction, self.divisor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        scale = x.mean((2, 3), keepdim=True)
        scale = F.relu(self.reduce(scale, self.hidden_channels(channels)))
        scale = F.hardsigmoid(self.expand(scale, channels))
        return x * scale


def activation(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else nn.Hardswish()
