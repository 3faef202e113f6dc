"""Batched predictions equal the one-subnet-at-a-time arithmetic they replace."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.complexity import complexity
from ofa_fleet.core.layers import subnet_layers
from ofa_fleet.core.space import cpu_space
from ofa_fleet.hardware.profile import Constraints, CpuSpec, HardwareProfile
from ofa_fleet.predictors.accuracy import AccuracySample, fit_accuracy_predictor
from ofa_fleet.predictors.layer_index import LayerIndex
from ofa_fleet.predictors.memory import model_bytes, peak_memory_bytes
from ofa_fleet.predictors.subnet_predictor import SubnetPredictor

SPACE = cpu_space()
PROFILE = HardwareProfile(
    "p", CpuSpec("aarch64", 4, 1.5), 2**30, 2**30, Constraints(5.0, 2**24, 2**22)
)
ARCHS = [ArchConfig.max(SPACE), ArchConfig.min(SPACE)] + [
    ArchConfig.sample(SPACE, random.Random(seed)) for seed in range(40)
]


def test_batch_equals_per_arch_figures():
    predictions = SubnetPredictor(SPACE, 3, 10, PROFILE).predict(ARCHS)
    assert predictions.top1 is None and predictions.latency_source == "analytic"
    for i, arch in enumerate(ARCHS):
        layers = subnet_layers(SPACE, arch, 3, 10)
        assert predictions.macs[i] == complexity(SPACE, arch, 3, 10).macs
        assert predictions.model_bytes[i] == model_bytes(layers)
        assert predictions.peak_memory_bytes[i] == peak_memory_bytes(layers)
    record = predictions.record(0)
    assert set(record) == {
        "arch", "latency_ms", "latency_source", "top1", "model_bytes", "peak_memory_bytes", "macs"
    }  # fmt: skip


def test_batch_encodings_equal_arch_encode():
    _, encodings = LayerIndex(SPACE, 3, 10).matrix_and_encodings(ARCHS)
    np.testing.assert_array_equal(encodings, np.stack([a.encode(SPACE) for a in ARCHS]))


def test_top1_comes_from_the_accuracy_predictor():
    samples = [AccuracySample(str(a), 0.5 + 0.01 * len(a.blocks)) for a in ARCHS]
    accuracy = fit_accuracy_predictor(SPACE, "v", samples, epochs=20)
    predictions = SubnetPredictor(SPACE, 3, 10, PROFILE, accuracy, "v").predict(ARCHS[:5])
    np.testing.assert_allclose(predictions.top1, accuracy.predict(ARCHS[:5]))


@pytest.mark.parametrize(
    "text",
    ["r32_k9e3-k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3", "r32_k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3"],
)
def test_invalid_archs_fail_with_the_core_message(text):
    from ofa_fleet.errors import InvalidArchError

    with pytest.raises(InvalidArchError):
        SubnetPredictor(SPACE, 3, 10, PROFILE).predict([ArchConfig.parse(text)])
