"""Measuring subnets' real accuracy: the samples an accuracy predictor learns from.

Each sample is what a shipped model would score: extracted from the supernet, its
BatchNorm recalibrated on training images, evaluated on the held-out split.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ofa_fleet.core.accelerator import CPU, Accelerator
from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.supernet import OFASupernet
from ofa_fleet.data import DataSplits
from ofa_fleet.predictors.accuracy import AccuracySample
from ofa_fleet.subnet import materialize
from ofa_fleet.training.evaluate import top1_accuracy


def measure_samples(
    supernet: OFASupernet,
    splits: DataSplits,
    archs: Sequence[ArchConfig],
    progress: Callable[[int, int], None] | None = None,
    *,
    accelerator: Accelerator = CPU,
) -> tuple[list[AccuracySample], float]:
    """Top-1 of every arch on ``splits.val``; returns the samples and their CPU seconds."""
    started = time.process_time()
    samples = []
    supernet.to(accelerator.device)
    for done, arch in enumerate(archs, 1):
        subnet = materialize(supernet, arch, splits, accelerator=accelerator)
        top1 = top1_accuracy(
            subnet.net, splits.val, splits.normalization, arch.resolution, accelerator=accelerator
        )
        samples.append(AccuracySample(str(arch), top1))
        if progress is not None:
            progress(done, len(archs))
    return samples, time.process_time() - started
