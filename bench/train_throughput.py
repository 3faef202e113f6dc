"""Training throughput of our OFA supernet against MIT's own ``ofa`` package, on this CPU.

What it measures: images per second of one full training step -- forward, cross-entropy,
backward, SGD (momentum 0.9) step -- on random 32x32 images with 10 classes, with
``torch.set_num_threads(2)`` (``--threads``). Warm-up steps are not timed; then every
variant of a comparison is timed ``--repeats`` times, interleaved (A B C D, A B C D, ...)
so that a change in machine load hits all of them alike, and the median is reported.

a) SAME SEARCH SPACE. Our `OFASupernet` on `mobilenet_v3_imagenet_space()` (OFA's
   MobileNetV3 widths, kernels 3/5/7, expands 3/4/6, depths 2/3/4, resolution set to 32)
   against the peer `ofa.imagenet_classification.elastic_nn.networks.OFAMobileNetV3`
   (PyPI ``ofa==0.1.0.post202307202001``) with the same choices, both with 10 classes;
   at batch 32 and at ``--batch-size``. Two steps: the max subnet, and another random
   subnet every step. The random subnets are drawn with `ArchConfig.sample` (seeded,
   resolution fixed at 32): ``--steps`` of them, run in the same order in every repeat
   and by every variant -- the peer gets each through its
   ``set_active_subnet(ks=..., e=..., d=...)`` -- so all columns time the same work; a
   warm-up pass over them first lets oneDNN build its kernels for their shapes (steady
   state). Ours runs channels-last (its training setting) and NCHW; the peer NCHW (its
   default) and channels-last; ratios are ours / peer.
b) OUR DEFAULT CPU SPACE (`SearchSpace()`), ours only (the peer hard-codes its widths):
   max and random subnets at ``--batch-size``, with the aims max subnet channels-last
   >= 300 images/s at batch 128 and MACs(max) / MACs(min) >= 5.

It also prints the parameter counts of the two max networks of (a), part by part when
they differ, and the CPU time that *other* processes used while each comparison ran
(from /proc/stat), plus the load average. A row during which others used more than 0.2
cores is marked '!' with a warning: 2 threads sharing 2 cores slow down far more than in
proportion, so such figures (and even their ratios) are not valid. Such a row is measured again,
after waiting for an idle machine, up to ``--retry-busy`` times (default 2).

The peer: if ``import ofa`` fails, ``bench/peer_ofa.py`` (shared with
``bench/search_specialize.py``) installs it once with ``pip install --no-deps --target
bench/.peer/ofa-<version>`` (a cache folder that holds its own ``.gitignore``) and puts
that folder on ``sys.path``; the package imports torchvision for its data loaders only,
so when torchvision is absent empty stand-in modules take its place during the import.
Without the peer (no network, ``--no-peer``) the peer columns read "unavailable" and the
script still exits 0.

Run (about 5 minutes on 2 idle cores with the defaults)::

    .venv/bin/python bench/train_throughput.py [--batch-size 128] [--steps 10] \
        [--repeats 3] [--warmup 3] [--retry-busy 2] [--quick] [--no-peer] [--json]

``--quick`` is a smoke run (a few steps, numbers not meaningful); ``--json`` prints one
JSON object on stdout instead of the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.complexity import complexity
from ofa_fleet.core.space import SearchSpace, mobilenet_v3_imagenet_space
from ofa_fleet.core.supernet import OFASupernet

# The peer's helpers live beside this script, which is also loaded by path (its tests).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_ofa
from peer_ofa import Peer
from peer_ofa import torchvision_stand_ins as torchvision_stand_ins  # re-exported for tests

PEER_MODULE = "ofa.imagenet_classification.elastic_nn.networks"
PEER_CLASS = "OFAMobileNetV3"

N_CLASSES = 10
RESOLUTION = 32
SAME_SPACE_BATCH = 32  # the batch of the published peer figures (~70 / ~170 img/s here)
AIM_MAX_IMAGES_PER_S = 300.0  # default space, max subnet, channels-last, batch 128
AIM_MACS_RATIO = 5.0
# Other processes using more than this many cores during a row make its figures invalid:
# 2 torch threads on 2 cores slow down far more than in proportion when they share them.
BUSY_CORES = 0.2
LR, MOMENTUM = 0.01, 0.9

OURS_CL, OURS_NCHW = "ours channels-last", "ours NCHW"
PEER_NCHW, PEER_CL = "peer NCHW", "peer channels-last"


# --------------------------------------------------------------------------- spaces


def same_space_at_32() -> SearchSpace:
    """OFA's MobileNetV3 space with its resolution set to 32, for 32x32 toy data.

    `dataclasses.replace` runs ``__post_init__`` again, which recomputes the fingerprint;
    the check below makes sure it equals the one of a space built field by field.
    """
    base = mobilenet_v3_imagenet_space()
    try:
        space = dataclasses.replace(base, resolutions=(RESOLUTION,))
    except (TypeError, ValueError):
        space = SearchSpace.from_dict({**base.to_dict(), "resolutions": [RESOLUTION]})
    rebuilt = SearchSpace.from_dict(space.to_dict())
    if space.fingerprint != rebuilt.fingerprint or space.fingerprint == base.fingerprint:
        raise RuntimeError("SearchSpace fingerprint was not recomputed by dataclasses.replace")
    return space


def peer_setting(arch: ArchConfig, max_depth: int) -> dict[str, list[int]]:
    """Our arch as arguments of the peer's ``set_active_subnet``.

    The peer takes one kernel and expand ratio per block *slot* (stages x max depth) and a
    depth per stage; slots past a stage's depth are never run, so they repeat its last block.
    """
    ks: list[int] = []
    expands: list[int] = []
    for stage in arch.stages:
        for slot in range(max_depth):
            block = stage[min(slot, len(stage) - 1)]
            ks.append(block.kernel)
            expands.append(block.expand)
    return {"ks": ks, "e": expands, "d": list(arch.depths)}


# --------------------------------------------------------------------------- timing


@dataclass
class Measurement:
    """Images/s of one variant: the median of its timed repeats."""

    images_per_s: float
    repeats: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "images_per_s": round(self.images_per_s, 2),
            "repeats": [round(r, 2) for r in self.repeats],
        }


@dataclass
class Runner:
    """One variant of a comparison: a model and a closure doing one training step."""

    name: str
    model: nn.Module
    step: Callable[[ArchConfig], None]


def subnet_sequence(space: SearchSpace, subnet: str, count: int, seed: int) -> list[ArchConfig]:
    """The subnets the steps of one repeat run: the max one, or ``count`` random ones.

    Random ones are drawn with `ArchConfig.sample` at the fixed resolution 32, from
    ``seed``, so every variant and every repeat runs the same work.
    """
    if space.resolutions[-1] != RESOLUTION:
        raise ValueError(f"space must allow resolution {RESOLUTION}, has {space.resolutions}")
    if subnet == "max":
        return [ArchConfig.max(space)]
    if subnet != "random":
        raise ValueError(f"subnet must be 'max' or 'random', got {subnet!r}")
    rng = random.Random(seed)
    return [ArchConfig.sample(space, rng, resolutions=(RESOLUTION,)) for _ in range(count)]


def train_step(
    model: nn.Module,
    forward: Callable[[torch.Tensor, ArchConfig], torch.Tensor],
    *,
    batch: int,
    channels_last: bool,
    seed: int,
) -> Callable[[ArchConfig], None]:
    """A closure running one SGD step of subnet ``arch`` of ``model`` on a fixed batch.

    The batch is made (and put in channels-last layout) once, as a data loader would
    deliver it; selecting the subnet is part of the timed step.
    """
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, RESOLUTION, RESOLUTION, generator=generator)
    labels = torch.randint(0, N_CLASSES, (batch,), generator=generator)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()

    def step(arch: ArchConfig) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(images, arch), labels)
        loss.backward()
        optimizer.step()

    return step


def our_runner(
    space: SearchSpace, *, batch: int, channels_last: bool, seed: int = 0, name: str = ""
) -> Runner:
    """Our supernet; its step runs the subnet it is given (``net(x, arch)``)."""
    torch.manual_seed(seed)
    net = OFASupernet(space, num_classes=N_CLASSES)
    step = train_step(net, net, batch=batch, channels_last=channels_last, seed=seed)
    return Runner(name or ("ours " + ("channels-last" if channels_last else "NCHW")), net, step)


def peer_runner(
    peer_cls: type[nn.Module],
    space: SearchSpace,
    *,
    batch: int,
    channels_last: bool,
    seed: int = 0,
    name: str = "",
) -> Runner:
    """The peer's OFAMobileNetV3; its step first sets the subnet with ``set_active_subnet``."""
    torch.manual_seed(seed)
    net = build_peer(peer_cls)
    net.set_max_net()  # type: ignore[operator]

    def forward(images: torch.Tensor, arch: ArchConfig) -> torch.Tensor:
        net.set_active_subnet(**peer_setting(arch, space.max_depth))  # type: ignore[operator]
        return net(images)

    step = train_step(net, forward, batch=batch, channels_last=channels_last, seed=seed)
    return Runner(name or ("peer " + ("channels-last" if channels_last else "NCHW")), net, step)


def build_peer(peer_cls: type[nn.Module]) -> nn.Module:
    return peer_cls(
        n_classes=N_CLASSES,
        width_mult=1.0,
        ks_list=[3, 5, 7],
        expand_ratio_list=[3, 4, 6],
        depth_list=[2, 3, 4],
    )


class CpuMeter:
    """How many cores' worth of CPU *other* processes used while a block ran.

    Busy time of the whole machine from /proc/stat minus this process's own CPU time;
    None where /proc/stat cannot be read.
    """

    def __init__(self) -> None:
        self.others_cores: float | None = None
        self.load_after: float | None = None

    def __enter__(self) -> CpuMeter:
        self._wall = time.perf_counter()
        self._busy = _machine_busy_seconds()
        self._own = _own_cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        busy = _machine_busy_seconds()
        if busy is not None and self._busy is not None and wall > 0:
            others = (busy - self._busy) - (_own_cpu_seconds() - self._own)
            self.others_cores = max(0.0, others / wall)
        self.load_after = _load_average()


def _machine_busy_seconds() -> float | None:
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    except (OSError, IndexError):
        return None
    # user nice system idle iowait irq softirq steal: busy is all but idle and iowait
    ticks = [int(v) for v in fields]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def wait_for_idle(timeout_s: float, window_s: float = 5.0) -> bool:
    """Wait until the machine is idle (under BUSY_CORES busy) for one window; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = _machine_busy_seconds()
        time.sleep(window_s)
        after = _machine_busy_seconds()
        if before is None or after is None or (after - before) / window_s <= BUSY_CORES:
            return True
    return False


@dataclass
class GroupResult:
    """Interleaved measurements of the variants of one comparison row."""

    measurements: dict[str, Measurement]
    others_cores: float | None
    load_after: float | None


def measure(
    runners: list[Runner],
    archs: list[ArchConfig],
    *,
    batch: int,
    steps: int,
    repeats: int,
    warmup: int,
) -> GroupResult:
    """Time ``repeats`` rounds of ``steps`` steps of every runner, interleaved.

    Step ``i`` of a repeat runs ``archs[i % len(archs)]``. Untimed first: ``warmup`` steps
    and, where there are several subnets, one pass over all of them, as the first step
    of a new shape builds its oneDNN kernels (seen: ~40% slower) -- what is timed is
    the steady state that training reaches once it has met every shape.
    """
    warm = warmup + (len(archs) if len(archs) > 1 else 0)
    for runner in runners:
        for i in range(warm):
            runner.step(archs[i % len(archs)])
    rates: dict[str, list[float]] = {runner.name: [] for runner in runners}
    with CpuMeter() as meter:
        for _ in range(repeats):
            for runner in runners:
                start = time.perf_counter()
                for i in range(steps):
                    runner.step(archs[i % len(archs)])
                rates[runner.name].append(batch * steps / (time.perf_counter() - start))
    return GroupResult(
        {name: Measurement(statistics.median(r), r) for name, r in rates.items()},
        meter.others_cores,
        meter.load_after,
    )


def measure_ours(
    space: SearchSpace,
    subnet: str,
    *,
    batch: int,
    steps: int,
    repeats: int,
    warmup: int,
    channels_last: bool = True,
    seed: int = 0,
) -> Measurement:
    """Images/s of our supernet alone (the part of the benchmark that needs no peer)."""
    archs = subnet_sequence(space, subnet, steps, seed)
    runner = our_runner(space, batch=batch, channels_last=channels_last, seed=seed)
    result = measure([runner], archs, batch=batch, steps=steps, repeats=repeats, warmup=warmup)
    return result.measurements[runner.name]


def mean_macs_fraction(space: SearchSpace, archs: list[ArchConfig]) -> float:
    """Mean MACs of ``archs`` as a fraction of the max subnet's."""
    top = complexity(space, ArchConfig.max(space), 3, N_CLASSES).macs
    return statistics.fmean(complexity(space, a, 3, N_CLASSES).macs for a in archs) / top


# --------------------------------------------------------------------------- the peer


def load_peer(*, install: bool = True, log: Callable[[str], None] = print) -> Peer:
    """Import the peer's OFAMobileNetV3, from the environment or from the bench cache."""
    return peer_ofa.load_peer(f"{PEER_MODULE}:{PEER_CLASS}", install=install, log=log)


# --------------------------------------------------------------------------- parameters


def _count(modules: list[nn.Module]) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def parameter_parts(ours: OFASupernet, peer: nn.Module | None) -> list[dict[str, Any]]:
    """Parameters of both max networks, part by part (the peer's parts in its own names)."""
    our_parts: list[tuple[str, list[nn.Module]]] = [
        ("stem", [ours.stem]),
        ("first block", [ours.first_block]),
        *((f"stage {s + 1}", [stage]) for s, stage in enumerate(ours.stages)),
        ("head", [ours.head]),
    ]
    peer_parts: list[tuple[str, list[nn.Module]]] = []
    if peer is not None:
        peer_parts = [
            ("first_conv", [peer.first_conv]),
            ("blocks[0]", [peer.blocks[0]]),
            *(
                (f"blocks[{g[0]}:{g[-1] + 1}]", [peer.blocks[i] for i in g])
                for g in peer.block_group_info
            ),
            (
                "final_expand_layer, feature_mix_layer, classifier",
                [peer.final_expand_layer, peer.feature_mix_layer, peer.classifier],
            ),
        ]
    parts = []
    for index, (name, modules) in enumerate(our_parts):
        peer_name, peer_modules = peer_parts[index] if peer_parts else (None, [])
        parts.append(
            {
                "part": name,
                "ours": _count(modules),
                "peer": _count(peer_modules) if peer_parts else None,
                "peer_modules": peer_name,
            }
        )
    return parts


# --------------------------------------------------------------------------- the run


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _ratio(a: Measurement | None, b: Measurement | None) -> float | None:
    if a is None or b is None or b.images_per_s <= 0:
        return None
    return round(a.images_per_s / b.images_per_s, 3)


def run(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    timing = {"steps": args.steps, "repeats": args.repeats, "warmup": args.warmup}

    def measure_row(
        runners: list[Runner],
        archs: list[ArchConfig],
        *,
        batch: int,
        retries: int,
        log: Callable[[str], None],
    ) -> GroupResult:
        """`measure`, again (up to ``retries`` times) while other processes were busy."""
        result = measure(runners, archs, batch=batch, **timing)
        for attempt in range(retries):
            if result.others_cores is None or result.others_cores <= BUSY_CORES:
                break
            log(
                f"  other processes used {result.others_cores:.2f} cores: waiting for an idle "
                f"machine, then measuring again ({attempt + 1}/{retries})"
            )
            wait_for_idle(timeout_s=120)
            result = measure(runners, archs, batch=batch, **timing)
        return result

    load_before = _load_average()
    peer = Peer(False, "skipped (--no-peer)") if args.no_peer else load_peer(log=log)
    if not peer.available:
        log(f"[peer unavailable] {peer.reason}; its columns read 'unavailable'")
    peer_cls: type[nn.Module] | None = peer.objects.get(PEER_CLASS)

    space_a = same_space_at_32()
    ours_max = OFASupernet(space_a, num_classes=N_CLASSES)
    peer_max = build_peer(peer_cls) if peer_cls is not None else None
    parts = parameter_parts(ours_max, peer_max)
    params = {
        "ours": _count([ours_max]),
        "peer": _count([peer_max]) if peer_max is not None else None,
        "ours_kernel_transform_entries": sum(
            p.numel() for n, p in ours_max.named_parameters() if ".transforms." in n
        ),
        "parts": parts,
        "differing_parts": [p["part"] for p in parts if p["peer"] not in (None, p["ours"])],
    }
    del ours_max, peer_max

    same_space_rows = []
    for batch in dict.fromkeys((SAME_SPACE_BATCH, args.batch_size)):
        for subnet in ("max", "random"):
            log(f"(a) same space, {subnet} subnet, batch {batch} ...")
            common = {"batch": batch, "seed": args.seed}
            runners = [
                our_runner(space_a, channels_last=True, name=OURS_CL, **common),
                our_runner(space_a, channels_last=False, name=OURS_NCHW, **common),
            ]
            if peer_cls is not None:
                runners += [
                    peer_runner(peer_cls, space_a, channels_last=False, name=PEER_NCHW, **common),
                    peer_runner(peer_cls, space_a, channels_last=True, name=PEER_CL, **common),
                ]
            archs = subnet_sequence(space_a, subnet, args.steps, args.seed)
            result = measure_row(runners, archs, batch=batch, retries=args.retry_busy, log=log)
            m = result.measurements
            same_space_rows.append(
                {
                    "subnet": subnet,
                    "batch": batch,
                    "mean_macs_vs_max": round(mean_macs_fraction(space_a, archs), 3),
                    **{
                        name: m[name].to_dict() if name in m else None
                        for name in (OURS_CL, OURS_NCHW, PEER_NCHW, PEER_CL)
                    },
                    "ratio_ours_cl_over_peer_nchw": _ratio(m.get(OURS_CL), m.get(PEER_NCHW)),
                    "ratio_nchw_over_nchw": _ratio(m.get(OURS_NCHW), m.get(PEER_NCHW)),
                    "ratio_cl_over_cl": _ratio(m.get(OURS_CL), m.get(PEER_CL)),
                    "other_processes_cores": _round(result.others_cores),
                    "load_after": result.load_after,
                }
            )
            del runners

    space_b = SearchSpace()
    macs_max = complexity(space_b, ArchConfig.max(space_b), 3, N_CLASSES).macs
    macs_min = complexity(space_b, ArchConfig.min(space_b), 3, N_CLASSES).macs
    cpu_rows = []
    for subnet in ("max", "random"):
        log(f"(b) default CPU space, {subnet} subnet, batch {args.batch_size} ...")
        common = {"batch": args.batch_size, "seed": args.seed}
        runners = [
            our_runner(space_b, channels_last=True, name=OURS_CL, **common),
            our_runner(space_b, channels_last=False, name=OURS_NCHW, **common),
        ]
        archs = subnet_sequence(space_b, subnet, args.steps, args.seed)
        result = measure_row(
            runners, archs, batch=args.batch_size, retries=args.retry_busy, log=log
        )
        m = result.measurements
        cpu_rows.append(
            {
                "subnet": subnet,
                "batch": args.batch_size,
                "mean_macs_vs_max": round(mean_macs_fraction(space_b, archs), 3),
                OURS_CL: m[OURS_CL].to_dict(),
                OURS_NCHW: m[OURS_NCHW].to_dict(),
                "other_processes_cores": _round(result.others_cores),
                "load_after": result.load_after,
            }
        )
        del runners
    max_cl = cpu_rows[0][OURS_CL]["images_per_s"]
    aims = {
        "max_subnet_images_per_s": {
            "aim": f">= {AIM_MAX_IMAGES_PER_S:g} images/s, channels-last, batch 128",
            "value": max_cl,
            "batch": args.batch_size,
            "pass": max_cl >= AIM_MAX_IMAGES_PER_S,
            "valid_check": args.batch_size == 128 and not args.quick,
        },
        "macs_ratio_max_over_min": {
            "aim": f">= {AIM_MACS_RATIO:g}",
            "value": round(macs_max / macs_min, 2),
            "pass": macs_max / macs_min >= AIM_MACS_RATIO,
        },
    }
    return {
        "benchmark": "train_throughput",
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": _load_average(),
            "busy_rows": sum(_busy(r) for r in (*same_space_rows, *cpu_rows)),
            "busy_cores_limit": BUSY_CORES,
            "note": "load averages include this benchmark's own threads (about "
            f"{args.threads}); other_processes_cores excludes them",
        },
        "settings": {
            **timing,
            "batch_size": args.batch_size,
            "same_space_batch_sizes": list(dict.fromkeys((SAME_SPACE_BATCH, args.batch_size))),
            "resolution": RESOLUTION,
            "n_classes": N_CLASSES,
            "optimizer": f"SGD(lr={LR}, momentum={MOMENTUM})",
            "loss": "cross-entropy",
            "seed": args.seed,
            "retry_busy": args.retry_busy,
            "quick": args.quick,
        },
        "peer": peer.to_dict(),
        "same_space": {
            "space": "mobilenet_v3_imagenet_space() with resolutions=(32,)",
            "space_fingerprint": space_a.fingerprint,
            "max_subnet_macs_at_32": complexity(
                space_a, ArchConfig.max(space_a), 3, N_CLASSES
            ).macs,
            "parameters": params,
            "rows": same_space_rows,
        },
        "cpu_space": {
            "space": "SearchSpace() (default CPU space)",
            "space_fingerprint": space_b.fingerprint,
            "macs_max": macs_max,
            "macs_min": macs_min,
            "rows": cpu_rows,
        },
        "aims": aims,
    }


# --------------------------------------------------------------------------- output


def _fmt_rate(cell: dict[str, Any] | None, available: bool = True) -> str:
    if cell is None:
        return "[dim]unavailable[/dim]" if not available else "-"
    return f"{cell['images_per_s']:.1f}"


def _fmt_subnet(row: dict[str, Any]) -> str:
    if row["subnet"] == "max":
        return "max"
    return f"random\n({row['mean_macs_vs_max']:.0%} MACs)"


def _fmt_ratio(value: float | None) -> str:
    return "[dim]n/a[/dim]" if value is None else f"{value:.2f}x"


def _busy(row: dict[str, Any]) -> bool:
    others = row["other_processes_cores"]
    return others is not None and others > BUSY_CORES


def _fmt_load(row: dict[str, Any]) -> tuple[str, str]:
    others = row["other_processes_cores"]
    text = "?" if others is None else f"{others:.2f}"
    return (f"[yellow]{text}![/yellow]" if _busy(row) else text, str(row["load_after"]))


def print_report(report: dict[str, Any], console: Console) -> None:
    peer = report["peer"]
    settings = report["settings"]
    machine = report["machine"]
    console.print(
        f"[bold]Training throughput[/bold], images/s (median of {settings['repeats']} x "
        f"{settings['steps']} steps after {settings['warmup']} warm-up), "
        f"{settings['resolution']}x{settings['resolution']}, {settings['n_classes']} classes, "
        f"{settings['optimizer']}, torch {machine['torch']}, "
        f"{machine['torch_threads']} threads, {machine['cpu_count']} CPUs"
        + (
            "  [yellow](--quick: smoke run, figures not meaningful)[/yellow]"
            if settings["quick"]
            else ""
        )
    )
    if peer["available"]:
        console.print(
            f"peer: {peer['package']} (found {peer['version']}) from {peer['location']}"
            + ("; torchvision replaced by empty stand-ins" if peer["torchvision_stand_ins"] else "")
        )
    else:
        console.print(f"[yellow]peer unavailable:[/yellow] {peer['reason']}")

    same = report["same_space"]
    table = Table(
        title="(a) same search space: OFA MobileNetV3 (k 3/5/7, e 3/4/6, d 2/3/4), 10 classes; "
        "random = the same subnets on both (mean MACs as a share of the max subnet's)",
        title_justify="left",
    )
    table.add_column("subnet")
    for column in ("batch", "ours\nCL", "ours\nNCHW", "peer\nNCHW", "peer\nCL"):
        table.add_column(column, justify="right")
    table.add_column("ours/peer\nCL/NCHW", justify="right", style="bold")
    table.add_column("ours/peer\nNCHW/NCHW", justify="right")
    table.add_column("ours/peer\nCL/CL", justify="right")
    table.add_column("others\ncores", justify="right")
    table.add_column("load\n1 min", justify="right")
    for row in same["rows"]:
        table.add_row(
            _fmt_subnet(row),
            str(row["batch"]),
            _fmt_rate(row[OURS_CL]),
            _fmt_rate(row[OURS_NCHW]),
            _fmt_rate(row[PEER_NCHW], peer["available"]),
            _fmt_rate(row[PEER_CL], peer["available"]),
            _fmt_ratio(row["ratio_ours_cl_over_peer_nchw"]),
            _fmt_ratio(row["ratio_nchw_over_nchw"]),
            _fmt_ratio(row["ratio_cl_over_cl"]),
            *_fmt_load(row),
        )
    console.print(table)

    params = same["parameters"]
    console.print(
        f"max-net parameters: ours {params['ours']:,}, peer "
        + (f"{params['peer']:,}" if params["peer"] is not None else "unavailable")
        + " (both include OFA's kernel-transform matrices, "
        + f"{params['ours_kernel_transform_entries']:,} entries in ours); "
        + f"max-subnet MACs at 32x32: {same['max_subnet_macs_at_32']:,}"
    )
    if params["peer"] is not None and params["differing_parts"]:
        parts = Table(title="parameters by part (they differ)", title_justify="left")
        for column in ("part", "ours", "peer", "peer modules", "peer - ours"):
            parts.add_column(column, justify="right")
        for part in params["parts"]:
            parts.add_row(
                part["part"],
                f"{part['ours']:,}",
                f"{part['peer']:,}",
                part["peer_modules"],
                f"{part['peer'] - part['ours']:+,}",
            )
        console.print(parts)
        console.print(f"[yellow]parts that differ:[/yellow] {', '.join(params['differing_parts'])}")
    elif params["peer"] is not None:
        console.print("same size: every part (stem, first block, 5 stages, head) matches")

    cpu = report["cpu_space"]
    table = Table(title="(b) our default CPU space (SearchSpace())", title_justify="left")
    table.add_column("subnet")
    columns = ("batch", "ours\nCL", "ours\nNCHW", "CL/NCHW", "others\ncores", "load\n1 min")
    for column in columns:
        table.add_column(column, justify="right")
    for row in cpu["rows"]:
        table.add_row(
            _fmt_subnet(row),
            str(row["batch"]),
            _fmt_rate(row[OURS_CL]),
            _fmt_rate(row[OURS_NCHW]),
            _fmt_ratio(row[OURS_CL]["images_per_s"] / row[OURS_NCHW]["images_per_s"]),
            *_fmt_load(row),
        )
    console.print(table)
    for name, aim in report["aims"].items():
        verdict = "[green]PASS[/green]" if aim["pass"] else "[red]FAIL[/red]"
        note = ""
        if name == "max_subnet_images_per_s" and report["settings"]["quick"]:
            note = " [yellow](--quick: not a valid check)[/yellow]"
        elif name == "max_subnet_images_per_s" and aim["batch"] != 128:
            note = f" [yellow](measured at batch {aim['batch']}, the aim is at 128)[/yellow]"
        console.print(f"{verdict} {name}: {aim['value']} (aim {aim['aim']}){note}")
    busy = [r for r in (*same["rows"], *cpu["rows"]) if _busy(r)]
    if busy:
        worst = max(r["other_processes_cores"] for r in busy)
        console.print(
            f"[yellow]warning: other processes used up to {worst:.2f} cores during the "
            f"{len(busy)} rows marked '!' (limit {BUSY_CORES}); with {machine['torch_threads']} "
            "threads on a shared machine those figures are far below an idle one's: "
            "rerun when the machine is idle[/yellow]"
        )
    console.print(
        f"load average (1 min) before / after: {machine['load_average_before']} / "
        f"{machine['load_average_after']} (includes this benchmark's own threads)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batch-size", type=int, default=128, help="batch of (b), and of (a) beside 32"
    )
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed repeats; the median is reported"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 steps, 1 repeat, 1 warm-up"
    )
    parser.add_argument("--no-peer", action="store_true", help="measure our supernet only")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--retry-busy",
        type=int,
        default=2,
        help="measure a row again, up to this many times, when other processes were busy",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of tables"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.warmup = 2, 1, 1
    for name in ("batch_size", "steps", "repeats", "threads"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0 or args.retry_busy < 0:
        parser.error("--warmup and --retry-busy must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Console(stderr=True)
    report = run(args, lambda text: progress.print(f"[dim]{text}[/dim]"))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        console = Console()
        if not console.is_terminal:  # a file or a pipe: wide enough for the tables
            console = Console(width=120)
        print_report(report, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
