"""Build a device's latency table by timing layers in onnxruntime on the device itself.

What ``ofa-fleet profile-device`` runs, and what a device agent runs on real hardware:
it needs onnxruntime and the search space, not PyTorch or the supernet's weights.

Three sets of models are timed together in interleaved rounds (see `timing`):
1. every distinct layer of the space alone (OFA's lookup table);
2. chains of 1..4 shape-keeping 1x1 convolutions at every tensor shape that can sit
   between two layers; the chains' intercept is what a model boundary costs there
   (the runtime call plus onnxruntime's layout conversions at the edges), which a sum of
   separately-timed layers pays once per layer and a whole model once;
3. a few whole random subnets, to fit the table's remaining bias (``scale``, ``offset``).
"""

from __future__ import annotations

import platform
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import onnxruntime as ort

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.layers import Layer, space_layers, subnet_layers
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.latency_table import LatencyTable, boundary_key
from ofa_fleet.inference.graph_optimization import DEFAULT_GRAPH_OPTIMIZATION
from ofa_fleet.inference.timing import InterleavedTimer
from ofa_fleet.predictors.onnx_blocks import conv_chain_model, layers_model

CHAIN_LENGTHS = (1, 2, 3, 4)
ProgressCallback = Callable[[str, int, int], None]


def profile_device(
    space: SearchSpace,
    in_channels: int,
    num_classes: int,
    threads: int = 1,
    provider: str = "CPUExecutionProvider",
    whole_models: int = 16,
    rounds: int = 9,
    runs_per_round: int = 20,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    graph_optimization: str = DEFAULT_GRAPH_OPTIMIZATION,
) -> LatencyTable:
    """Time this machine and return its latency table for ``space``."""
    profiler = DeviceProfiler(
        space,
        in_channels,
        num_classes,
        threads,
        provider,
        whole_models,
        seed,
        progress,
        graph_optimization=graph_optimization,
    )
    table, _ = profiler.run(rounds, runs_per_round)
    return table


class DeviceProfiler:
    """One profiling run; callers may add probe models timed in the same rounds.

    Probes serve benchmarks: a machine's speed drifts (on a shared VM, by 1.5x over
    minutes, measured), so comparing a table with models timed in another run mixes the
    table's error with the machine's drift.
    """

    def __init__(
        self,
        space: SearchSpace,
        in_channels: int,
        num_classes: int,
        threads: int = 1,
        provider: str = "CPUExecutionProvider",
        whole_models: int = 16,
        seed: int = 0,
        progress: ProgressCallback | None = None,
        graph_optimization: str = DEFAULT_GRAPH_OPTIMIZATION,
    ) -> None:
        if provider not in ort.get_available_providers():
            raise InvalidArgumentError(
                f"execution provider {provider} is not available here; "
                f"available: {ort.get_available_providers()}"
            )
        if whole_models < 2:
            raise InvalidArgumentError(
                "profiling needs at least 2 whole models to fit its correction"
            )
        self.space, self.in_channels, self.num_classes = space, in_channels, num_classes
        self.report = progress or (lambda stage, done, total: None)
        self.timer = InterleavedTimer(threads, provider, graph_optimization)
        layers = space_layers(space, in_channels, num_classes)
        self.layer_index: dict[str, int] = {}
        for done, layer in enumerate(layers, 1):
            model = layers_model([layer], seed)
            self.layer_index[layer.key] = self.timer.add(model, layer_input_shape(layer))
            self.report("building layer models", done, len(layers))
        shapes = sorted({(x.out_channels, x.out_size) for x in layers if x.kind != "head"})
        self.chain_index: dict[tuple[int, int], list[int]] = {}
        for done, (channels, size) in enumerate(shapes, 1):
            self.chain_index[(channels, size)] = [
                self.timer.add(conv_chain_model(channels, size, n, seed), (1, channels, size, size))
                for n in CHAIN_LENGTHS
            ]
            self.report("building boundary models", done, len(shapes))
        self.archs = sample_archs(space, whole_models, seed)
        self.whole_index = []
        for done, arch in enumerate(self.archs, 1):
            subnet = subnet_layers(space, arch, in_channels, num_classes)
            self.whole_index.append(
                self.timer.add(layers_model(subnet, seed), layer_input_shape(subnet[0]))
            )
            self.report("building whole models", done, len(self.archs))
        self.probe_index: list[int] = []

    def add_probe(self, onnx_bytes: bytes, input_shape: tuple[int, ...]) -> None:
        self.probe_index.append(self.timer.add(onnx_bytes, input_shape))

    def run(self, rounds: int = 9, runs_per_round: int = 20) -> tuple[LatencyTable, list[float]]:
        """The table, and the probes' latencies (ms) in the order they were added."""
        timings = self.timer.measure(
            rounds, runs_per_round, on_round=lambda done: self.report("timing", done, rounds)
        )
        table = LatencyTable(
            space_fingerprint=self.space.fingerprint,
            in_channels=self.in_channels,
            num_classes=self.num_classes,
            threads=self.timer.threads,
            execution_provider=self.timer.provider,
            graph_optimization=self.timer.graph_optimization,
            onnxruntime_version=ort.__version__,
            machine=machine_description(),
            layers={key: round(timings[i], 6) for key, i in self.layer_index.items()},
            boundaries={
                boundary_key(*shape): round(max(0.0, _intercept([timings[i] for i in idx])), 6)
                for shape, idx in self.chain_index.items()
            },
            # timezone.utc, not datetime.UTC: devices run this on Python 3.10
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017
        )
        measured = [timings[i] for i in self.whole_index]
        sums = [
            table.table_sum_ms(subnet_layers(self.space, a, self.in_channels, self.num_classes))
            for a in self.archs
        ]
        scale, offset = fit_relative_line(sums, measured)
        samples = tuple(
            {"arch": str(a), "measured_ms": round(m, 6)}
            for a, m in zip(self.archs, measured, strict=True)
        )
        table = replace(table, scale=scale, offset_ms=offset, samples=samples)
        return table, [timings[i] for i in self.probe_index]


def sample_archs(space: SearchSpace, count: int, seed: int) -> list[ArchConfig]:
    """The largest and smallest subnets plus seeded random ones: the range search sees."""
    rng = random.Random(seed)
    archs = [ArchConfig.max(space), ArchConfig.min(space)]
    while len(archs) < count:
        archs.append(ArchConfig.sample(space, rng))
    return archs[:count]


def fit_relative_line(predicted: list[float], measured: list[float]) -> tuple[float, float]:
    """``scale, offset`` minimising the squared *relative* error of ``scale*p + offset``.

    Relative, because a budget is a ratio to meet: 0.1 ms off matters on a 0.3 ms model
    and not on a 30 ms one. Falls back to a pure scale when the offset would make the
    line negative over the observed range.
    """
    p = np.asarray(predicted, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    design = np.stack([p / m, 1.0 / m], axis=1)
    (scale, offset), *_ = np.linalg.lstsq(design, np.ones_like(m), rcond=None)
    if scale <= 0 or scale * p.min() + offset <= 0:
        scale, offset = float(np.sum(p / m) / np.sum((p / m) ** 2)), 0.0
    return float(scale), float(offset)


def machine_description() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.machine()} {model}".strip()


def _intercept(times: list[float]) -> float:
    _slope, intercept = np.polyfit(np.asarray(CHAIN_LENGTHS, dtype=np.float64), times, 1)
    return float(intercept)


def layer_input_shape(layer: Layer) -> tuple[int, int, int, int]:
    return (1, layer.in_channels, layer.size, layer.size)
