"""Latency: tables from a real profiling run, source selection, calibration."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.layers import space_layers, subnet_layers
from ofa_fleet.core.space import SearchSpace, StageSpec, cpu_space
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.latency_table import LatencyTable, boundary_key
from ofa_fleet.hardware.profile import Constraints, CpuSpec, HardwareProfile, LatencyReport
from ofa_fleet.predictors.calibration import fit_calibration
from ofa_fleet.predictors.device_profiling import fit_relative_line, profile_device
from ofa_fleet.predictors.latency import LatencyPredictor
from ofa_fleet.predictors.layer_index import LayerIndex

TINY = SearchSpace(
    stem_width=8,
    first_block_width=8,
    stages=(StageSpec(16, 2, "relu"), StageSpec(16, 1, "hswish", use_se=True)),
    head_width=32,
    feature_width=0,
    kernel_sizes=(3, 5),
    expand_ratios=(2, 3),
    depths=(1, 2),
    resolutions=(16, 20),
)


def profile(table: LatencyTable | None = None, reports=(), batch: int = 1) -> HardwareProfile:
    return HardwareProfile(
        name="test",
        cpu=CpuSpec("x86_64", 2, 2.0),
        ram_bytes=2**30,
        storage_bytes=2**30,
        constraints=Constraints(5.0, 2**20, 2**20, batch_size=batch),
        latency_table=table,
        latency_reports=tuple(reports),
    )


def synthetic_table(space: SearchSpace, **overrides) -> LatencyTable:
    layers = space_layers(space, 3, 10)
    values = dict(
        space_fingerprint=space.fingerprint,
        in_channels=3,
        num_classes=10,
        threads=1,
        execution_provider="CPUExecutionProvider",
        onnxruntime_version="test",
        machine="test",
        layers={layer.key: 0.01 + layer.figures.macs / 1e8 for layer in layers},
        boundaries={
            boundary_key(layer.out_channels, layer.out_size): 0.002
            for layer in layers
            if layer.kind != "head"
        },
    )
    return LatencyTable(**{**values, **overrides})


@pytest.fixture(scope="module")
def measured_table() -> LatencyTable:
    return profile_device(TINY, 3, 10, whole_models=4, rounds=2, runs_per_round=5)


def test_profiling_times_every_layer_and_boundary(measured_table):
    layers = space_layers(TINY, 3, 10)
    assert set(measured_table.layers) == {layer.key for layer in layers}
    assert all(value > 0 for value in measured_table.layers.values())
    shapes = {boundary_key(x.out_channels, x.out_size) for x in layers if x.kind != "head"}
    assert set(measured_table.boundaries) == shapes
    assert measured_table.scale > 0
    assert len(measured_table.samples) == 4
    assert LatencyTable.from_dict(measured_table.to_dict()) == measured_table


def test_table_prediction_is_sum_minus_boundaries_then_corrected():
    space = cpu_space()
    table = synthetic_table(space, scale=1.5, offset_ms=0.01)
    arch = ArchConfig.sample(space, random.Random(3))
    layers = subnet_layers(space, arch, 3, 10)
    expected = sum(table.layers[x.key] for x in layers) - 0.002 * (len(layers) - 1)
    assert table.table_sum_ms(layers) == pytest.approx(expected)
    predictor = LatencyPredictor(LayerIndex(space, 3, 10), profile(table))
    assert predictor.source == "lut"
    assert predictor.predict([arch])[0] == pytest.approx(1.5 * expected + 0.01)


def test_batch_size_scales_the_budgeted_latency():
    space = cpu_space()
    arch = ArchConfig.max(space)
    one = LatencyPredictor(LayerIndex(space, 3, 10), profile(synthetic_table(space)))
    four = LatencyPredictor(LayerIndex(space, 3, 10), profile(synthetic_table(space), batch=4))
    assert four.predict([arch])[0] == pytest.approx(4 * one.predict([arch])[0])


def test_analytic_without_table_grows_with_the_subnet():
    space = cpu_space()
    predictor = LatencyPredictor(LayerIndex(space, 3, 10), profile())
    assert predictor.source == "analytic"
    small, large = predictor.predict([ArchConfig.min(space), ArchConfig.max(space)])
    assert 0 < small < large


def test_table_for_another_space_is_refused():
    table = synthetic_table(cpu_space(), space_fingerprint="0000000000000000")
    with pytest.raises(InvalidArgumentError, match="measured for search space 0000000000000000"):
        LatencyPredictor(LayerIndex(cpu_space(), 3, 10), profile(table))


def test_table_for_other_classes_or_threads_is_refused():
    space = cpu_space()
    with pytest.raises(InvalidArgumentError, match="10 classes"):
        LatencyPredictor(LayerIndex(space, 3, 7), profile(synthetic_table(space)))
    with pytest.raises(InvalidArgumentError, match="measured with 2"):
        LatencyPredictor(LayerIndex(space, 3, 10), profile(synthetic_table(space, threads=2)))


def test_reports_calibrate_the_analytic_estimate():
    """Devices whose depthwise convolutions run 3x slower than the roofline says, and
    whose dispatch costs twice as much: reports must pull predictions onto them."""
    space = cpu_space()
    index = LayerIndex(space, 3, 10)
    base = LatencyPredictor(index, profile())
    rng = random.Random(0)
    archs = [ArchConfig.sample(space, rng) for _ in range(60)]
    truth = base.components(archs) @ np.array([1.2, 3.0, 1.0, 2.0])
    reports = [LatencyReport(str(a), float(t)) for a, t in zip(archs[:20], truth[:20], strict=True)]
    calibrated = LatencyPredictor(index, profile(reports=reports))
    assert calibrated.source == "calibrated"
    before = np.abs(base.predict(archs[20:]) / truth[20:] - 1)
    after = np.abs(calibrated.predict(archs[20:]) / truth[20:] - 1)
    assert np.mean(after <= 0.05) >= 0.9
    assert after.mean() < before.mean() / 4


def test_calibrated_predictions_under_predict_no_report():
    """Reports scattered around a common scale (devices that measure 10% apart): the
    calibrated prediction of every reported subnet is at least what was reported, since
    every device must meet the budget it is checked against."""
    space = cpu_space()
    index = LayerIndex(space, 3, 10)
    base = LatencyPredictor(index, profile())
    rng = random.Random(1)
    archs = [ArchConfig.sample(space, rng) for _ in range(8)]
    noise = np.array([1.0, 1.1, 0.95, 1.05, 0.9, 1.08, 1.0, 0.97])
    measured = 2.0 * base.predict(archs) * noise
    reports = [LatencyReport(str(a), float(m)) for a, m in zip(archs, measured, strict=True)]
    calibrated = LatencyPredictor(index, profile(reports=reports))
    predicted = calibrated.predict(archs)
    assert np.all(predicted >= measured * (1 - 1e-9))
    assert np.max(predicted / measured) < 1.3  # raised to the reports, not far past them


def test_one_report_fixes_the_overall_level():
    rows = np.array([[1.0, 1.0, 0.5, 0.5]])
    calibration = fit_calibration(rows, np.array([6.0]))
    assert calibration.predict(rows)[0] == pytest.approx(6.0, rel=0.05)


def test_calibration_rejects_bad_measurements():
    with pytest.raises(InvalidArgumentError, match="positive"):
        fit_calibration(np.ones((2, 4)), np.array([1.0, -1.0]))


def test_relative_line_fit_recovers_scale_and_offset():
    predicted = [1.0, 2.0, 3.0, 5.0]
    scale, offset = fit_relative_line(predicted, [0.8 * p + 0.3 for p in predicted])
    assert scale == pytest.approx(0.8)
    assert offset == pytest.approx(0.3)


def test_invalid_arch_is_refused_with_its_reason():
    predictor = LatencyPredictor(LayerIndex(cpu_space(), 3, 10), profile())
    arch = ArchConfig.parse("r30_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3")
    with pytest.raises(InvalidArgumentError, match="resolution"):
        predictor.predict([arch])


def test_a_table_devices_measured_for_an_earlier_space_gives_way_to_the_analytic_one():
    old = synthetic_table(TINY)
    index = LayerIndex(cpu_space(), 3, 10)
    measured = dataclasses.replace(profile(old), measure_on_devices=True)
    predictor = LatencyPredictor(index, measured)
    assert predictor.source == "analytic" and predictor.table is None
    with pytest.raises(InvalidArgumentError, match="measured for search space"):
        LatencyPredictor(index, profile(old))  # an operator's table for another space
    current = dataclasses.replace(measured, latency_table=synthetic_table(cpu_space()))
    assert LatencyPredictor(index, current).source == "lut"
    other_provider = synthetic_table(cpu_space(), execution_provider="XnnpackExecutionProvider")
    moved = dataclasses.replace(measured, latency_table=other_provider)
    assert LatencyPredictor(index, moved).source == "analytic"  # the runtime changed since
