"""Analytic latency from a profile's figures, for devices that have not profiled themselves.

Each node of the exported graph is costed with a roofline: the larger of its arithmetic
time (2 x MACs against the attainable FLOP/s) and its memory time (bytes read and
written against the bandwidth), plus a fixed dispatch cost per node and per call. Times
are kept apart by kind of work (dense convolution, depthwise convolution, memory-bound
nodes, dispatch), so calibration can correct each kind separately once devices report
(see `calibration`).

Where a profile leaves out peak FLOP/s or bandwidth, they are derived from the clock and
the architecture's SIMD width. Both defaults and the attainable fractions below are
rough: the analytic estimate is the fallback, not the goal; a measured table or device
reports should replace it.
"""

from __future__ import annotations

import numpy as np

from ofa_fleet.core.layers import FLOAT_BYTES, Layer, layer_nodes
from ofa_fleet.hardware.profile import CpuSpec

# fp32 FLOPs per cycle per core: two FMA pipes of the SIMD width (AVX2: 8 lanes;
# NEON: 4 lanes; ARMv7 NEON issues one 128-bit FMA per 2 cycles on small cores).
FLOPS_PER_CYCLE = {"x86_64": 32.0, "aarch64": 16.0, "armv7": 8.0, "riscv64": 4.0}
# Sustained DRAM bandwidth in GB/s when the profile gives none (typical single-channel
# LPDDR4 on ARM boards, dual-channel DDR4 on x86).
DEFAULT_BANDWIDTH_GBPS = {"x86_64": 20.0, "aarch64": 4.0, "armv7": 2.0, "riscv64": 2.0}
# Share of peak a small convolution attains in onnxruntime's CPU kernels.
ATTAINABLE = {"conv": 0.5, "gemm": 0.3, "dwconv": 0.1}
# Dispatch cost per node and per call, in cycles.
NODE_OVERHEAD_CYCLES = 2_000.0
CALL_OVERHEAD_CYCLES = 20_000.0

COMPONENTS = ("dense", "depthwise", "memory", "dispatch")


def peak_flops(cpu: CpuSpec, threads: int) -> float:
    """FLOP/s of the ``threads`` cores a model uses."""
    if cpu.peak_gflops is not None:
        return cpu.peak_gflops * 1e9 * min(threads, cpu.cores) / cpu.cores
    return cpu.clock_ghz * 1e9 * FLOPS_PER_CYCLE[cpu.architecture] * min(threads, cpu.cores)


def bandwidth(cpu: CpuSpec) -> float:
    gbps = cpu.memory_bandwidth_gbps or DEFAULT_BANDWIDTH_GBPS[cpu.architecture]
    return gbps * 1e9


def layer_components_ms(layer: Layer, cpu: CpuSpec, threads: int) -> np.ndarray:
    """The layer's analytic time in ms, split into `COMPONENTS`."""
    flops, bytes_per_s = peak_flops(cpu, threads), bandwidth(cpu)
    elements = {"input": layer.in_channels * layer.size * layer.size}
    parts = np.zeros(len(COMPONENTS))
    for node in layer_nodes(layer):
        elements[node.name] = node.elements
        moved = sum(elements[i] for i in node.inputs) + node.elements + node.weights
        memory_s = moved * FLOAT_BYTES / bytes_per_s
        if node.macs and node.op in ATTAINABLE:
            compute_s = 2.0 * node.macs / (flops * ATTAINABLE[node.op])
            slot = COMPONENTS.index("depthwise" if node.op == "dwconv" else "dense")
            parts[slot] += max(compute_s, memory_s) * 1000.0
        else:
            parts[COMPONENTS.index("memory")] += memory_s * 1000.0
    cycle_ms = 1000.0 / (cpu.clock_ghz * 1e9)
    parts[COMPONENTS.index("dispatch")] = len(layer_nodes(layer)) * NODE_OVERHEAD_CYCLES * cycle_ms
    if layer.kind == "stem":
        parts[COMPONENTS.index("dispatch")] += CALL_OVERHEAD_CYCLES * cycle_ms
    return parts
