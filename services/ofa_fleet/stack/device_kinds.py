"""Simulated device kinds that really differ in speed on one machine, for the closed-loop
demo: each kind loads its models with another onnxruntime graph optimization level.

Why that knob, of those the machine offers (measured on this project's 2-core VM, one
thread, the smallest and largest subnet of the first-use space):

- **graph optimization level**: a model loaded with "basic" (no fusions, no layout
  changes) takes 3 to 7 times as long as with "all", more for wide, large-kernel subnets;
  stable from run to run, and not one factor across subnets, so a per-layer table
  measured at the level is needed to predict it (the profile's CPU figures cannot). Real
  devices do run at lower levels (minimal builds, less memory while loading).
- threads: with 2 cores shared by the servers and every simulated device, a second
  thread measured slower as often as faster (0.27 ms against 0.15 ms with one).
- CPU affinity: on 2 cores, the same as threads.
- a CPU-bandwidth quota (a cgroup's cpu.max, or stopping and continuing the process):
  it throttles in periods of about 100 ms, so an inference of a millisecond or less
  either runs at full speed or waits a whole period: its median does not move, only its
  tail.

Budgets are set for this machine, not written down: each kind's budget sits at a chosen
point between the latency of the space's smallest and largest subnets, timed here at
the kind's level (on a log scale: 0 is the smallest's latency, 1 the largest's), so
every kind has subnets that fit and subnets that do not, on any machine. The profile
files are written once per workdir and kept, so a rerun does not move the budgets.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.layers import subnet_layers
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.hardware.local_machine import local_profile
from ofa_fleet.hardware.profile import Constraints, HardwareProfile, RuntimeSpec
from ofa_fleet.inference.timing import InterleavedTimer
from ofa_fleet.predictors.device_profiling import layer_input_shape
from ofa_fleet.predictors.onnx_blocks import layers_model
from ofa_fleet.storage.durable import write_atomic

MODEL_BYTES = 16 * 2**20
MEMORY_BYTES = 2**30


@dataclass(frozen=True)
class DeviceKind:
    name: str  # the profile's (and, prefixed, the fleet's) name
    graph_optimization: str
    budget_position: float  # 0: the smallest subnet's latency here, 1: the largest's


KINDS = (
    DeviceKind("sim-optimized", "all", 0.6),
    # The same hardware held to a tighter budget: it must get a smaller subnet.
    DeviceKind("sim-optimized-tight", "all", 0.3),
    DeviceKind("sim-basic", "basic", 0.5),
)


@dataclass(frozen=True)
class BudgetCalibration:
    smallest_ms: float
    largest_ms: float
    budget_ms: float


def calibrate(
    kind: DeviceKind, space: SearchSpace, in_channels: int, num_classes: int
) -> BudgetCalibration:
    """Time the space's smallest and largest subnets at the kind's level; place the budget."""
    timer = InterleavedTimer(1, "CPUExecutionProvider", kind.graph_optimization)
    for arch in (ArchConfig.min(space), ArchConfig.max(space)):
        layers = subnet_layers(space, arch, in_channels, num_classes)
        timer.add(layers_model(layers), layer_input_shape(layers[0]))
    smallest, largest = timer.measure(rounds=5, runs_per_round=20)
    largest = max(largest, smallest)
    budget = smallest * (largest / smallest) ** kind.budget_position
    return BudgetCalibration(round(smallest, 4), round(largest, 4), round(budget, 4))


def kind_profile(kind: DeviceKind, budget_ms: float) -> HardwareProfile:
    """This machine's CPU (the analytic estimate's word), the kind's runtime and budget,
    and a table its devices measure."""
    machine = local_profile(threads=1)
    return dataclasses.replace(
        machine,
        name=kind.name,
        ram_bytes=MEMORY_BYTES,
        storage_bytes=MEMORY_BYTES,
        runtime=RuntimeSpec(threads=1, graph_optimization=kind.graph_optimization),
        constraints=Constraints(
            latency_budget_ms=budget_ms,
            max_model_bytes=MODEL_BYTES,
            max_peak_memory_bytes=MEMORY_BYTES,
        ),
        measure_on_devices=True,
    )


def ensure_kind_profiles(
    directory: Path, space: SearchSpace, in_channels: int, num_classes: int
) -> dict[str, BudgetCalibration | None]:
    """A profile file per kind in ``directory``, calibrated unless it exists; returns each
    kind's calibration (None for a file kept from an earlier run)."""
    directory.mkdir(parents=True, exist_ok=True)
    found: dict[str, BudgetCalibration | None] = {}
    for kind in KINDS:
        path = directory / f"{kind.name}.json"
        if path.is_file():
            found[kind.name] = None
            continue
        calibration = calibrate(kind, space, in_channels, num_classes)
        profile = kind_profile(kind, calibration.budget_ms)
        write_atomic(path, json.dumps(profile.to_dict(), indent=1).encode())
        found[kind.name] = calibration
    return found
