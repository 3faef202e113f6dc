"""BatchNorm recalibration: give an extracted subnet statistics of its own.

The supernet's running statistics mix every subnet trained through it; a subnet's own
activations have other means and variances. OFA's remedy, used here: reset the
statistics and re-estimate them as an exact average over a few training batches.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Re-estimate every BatchNorm's statistics of ``model`` from ``batches``; eval mode after.

    ``momentum=None`` makes PyTorch keep a cumulative average, so the result is the mean
    over all batches whatever their number. Only statistics change; weights do not.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    seen = 0
    try:
        for batch in batches:
            model(batch)
            seen += 1
    finally:
        for norm, momentum in zip(norms, saved, strict=True):
            norm.momentum = momentum
        model.eval()
    if seen == 0:
        raise ValueError("BatchNorm recalibration needs at least one batch")
    return model
