"""One GPU: our supernet's training speed against MIT's ``ofa`` on the same GPU, and the wall
time of progressive shrinking on all of CIFAR-10.

Prepared to run as one short command on a machine lent with a GPU (CUDA torch, onnx,
onnxruntime; no Ray or server packages), from the source tree::

    PYTHONPATH=services python3 bench/gpu_train.py --cifar-dir DATA --json-out $OUT/gpu.json

The peer must travel beside it (no network there): ``bench/.peer`` as
``bench/peer_ofa.py`` installs it here.

1. **Throughput** on synthetic 32x32 batches of ``--batch-size`` in the peer's space
   (OFA's MobileNetV3 widths, kernels 3/5/7, expands 3/4/6, depths 2/3/4, resolution 32),
   each row the median of ``--repeats`` interleaved rounds of ``--steps`` timed steps
   (``torch.cuda.synchronize`` around each round), after warm-up:

   - ours, largest subnet: fp32 NCHW (like for like) and bf16 autocast + channels-last
     (what ``--device cuda`` trains with);
   - ours, a progressive-shrinking step (the ``expand`` phase: largest, smallest and two
     random subnets with the full network as teacher): the trainer's own step;
   - the peer's ``OFAMobileNetV3``, largest subnet: fp32 NCHW (its default) and under
     the same bf16 autocast + channels-last; and one random subnet a step.

   The goal: ours at our setting >= 1.5x the peer at its default, largest subnet.
2. **torch.compile**: the largest subnet as a static network, eager against compiled
   (bf16, channels-last): step time and compile time. The trainer does not compile (the
   supernet changes shape every step); this row says what compiling would buy.
3. **CIFAR-10 progressive shrinking**: `ProgressiveTrainer` on the 50,000 training images
   (the test split held out), cpu space, ``--epochs`` per phase, on the GPU: wall time,
   images/s per phase (steps only) and the largest and smallest subnets' top-1.

``--device cpu --smoke`` runs every section on a few steps and digits (a check of the
script, not figures).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import (
    N_CLASSES,
    RESOLUTION,
    build_peer,
    load_peer,
    peer_setting,
    same_space_at_32,
)

from ofa_fleet.core.accelerator import Accelerator, resolve_accelerator
from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.extract import extract
from ofa_fleet.core.space import SearchSpace, cpu_space
from ofa_fleet.core.supernet import OFASupernet

DEFAULT_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10"
Step = Callable[[], None]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(steps: dict[str, Step], batch: int, args: argparse.Namespace, device: Accelerator):
    """images/s of each step: the median of interleaved rounds, after warm-up."""
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            _sync(device)
            started = time.perf_counter()
            for _ in range(args.steps):
                step()
            _sync(device)
            rates[name].append(batch * args.steps / (time.perf_counter() - started))
    return {name: round(statistics.median(r), 1) for name, r in rates.items()}


def _sync(device: Accelerator) -> None:
    if device.is_cuda:
        torch.cuda.synchronize(device.device)


def sgd_step(
    model: torch.nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    device: Accelerator,
    batch: int,
    *,
    bf16_channels_last: bool,
) -> Step:
    """One SGD step of ``forward`` on a fixed batch, at fp32 NCHW or bf16 channels-last."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, RESOLUTION, RESOLUTION, generator=generator)
    labels = torch.randint(0, N_CLASSES, (batch,), generator=generator).to(device.device)
    model.to(device.device)
    if bf16_channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        images = images.contiguous(memory_format=torch.channels_last)
    images = images.to(device.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    autocast = device.autocast if bf16_channels_last else contextlib.nullcontext

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(forward(images), labels)
        loss.backward()
        optimizer.step()

    return step


def sandwich_step(space: SearchSpace, device: Accelerator, batch: int) -> Step:
    """The trainer's own step of the ``expand`` phase on a fixed batch."""
    from ofa_fleet.data import DataSplits, ImageDataset, Normalization
    from ofa_fleet.training.config import TrainConfig
    from ofa_fleet.training.trainer import ProgressiveTrainer

    images = torch.randint(0, 256, (batch * 2, 3, RESOLUTION, RESOLUTION), dtype=torch.uint8)
    data = ImageDataset(images, torch.arange(batch * 2) % N_CLASSES, tuple("abcdefghij"))
    splits = DataSplits(data, data, Normalization((0.5,) * 3, (0.25,) * 3), "synthetic", 32, True)
    config = TrainConfig(batch_size=batch)
    with tempfile.TemporaryDirectory() as folder:
        trainer = ProgressiveTrainer(
            splits, Path(folder) / "x.ckpt", config, space, accelerator=device
        )
    trainer._place_networks()
    phase = trainer.phases[-1]
    trainer.teacher = copy.deepcopy(trainer.supernet).eval()
    optimizer = torch.optim.SGD(trainer.supernet.parameters(), lr=0.01, momentum=0.9)
    x = trainer._prepare(images[:batch], RESOLUTION)
    labels = device.put(data.labels[:batch])
    rng = random.Random(0)

    def step() -> None:
        subnets = phase.subnets(space, rng, RESOLUTION, config.random_subnets)
        trainer._step(x, labels, subnets, phase, RESOLUTION, optimizer)

    return step


def throughput(args: argparse.Namespace, device: Accelerator) -> dict[str, Any]:
    space = same_space_at_32()
    largest = ArchConfig.max(space)
    steps: dict[str, Step] = {}
    for setting, fast in (("fp32 NCHW", False), ("bf16 channels-last", True)):
        torch.manual_seed(0)
        net = OFASupernet(space, 3, N_CLASSES)
        steps[f"ours largest, {setting}"] = sgd_step(
            net, lambda x, n=net: n(x, largest), device, args.batch_size, bf16_channels_last=fast
        )
    steps["ours PS step (4 subnets + teacher), bf16 channels-last"] = sandwich_step(
        space, device, args.batch_size
    )
    peer = load_peer(install=args.install_peer, log=log)
    if peer.available:
        cls = next(iter(peer.objects.values()))
        rng = random.Random(0)
        for setting, fast in (("fp32 NCHW", False), ("bf16 channels-last", True)):
            torch.manual_seed(0)
            net = build_peer(cls)
            net.set_max_net()  # type: ignore[operator]
            steps[f"peer largest, {setting}"] = sgd_step(
                net, net, device, args.batch_size, bf16_channels_last=fast
            )
        torch.manual_seed(0)
        peer_net = build_peer(cls)

        def random_forward(x: torch.Tensor, n: Any = peer_net) -> torch.Tensor:
            arch = ArchConfig.sample(space, rng, resolutions=(RESOLUTION,))
            n.set_active_subnet(**peer_setting(arch, space.max_depth))
            return n(x)

        steps["peer random subnet, fp32 NCHW"] = sgd_step(
            peer_net, random_forward, device, args.batch_size, bf16_channels_last=False
        )
    rates = timed(steps, args.batch_size, args, device)
    ours = rates["ours largest, bf16 channels-last"]
    peer_default = rates.get("peer largest, fp32 NCHW")
    return {
        "batch": args.batch_size,
        "images_per_s": rates,
        "peer": peer.to_dict(),
        "ours_over_peer_largest": round(ours / peer_default, 2) if peer_default else None,
    }


def compile_row(args: argparse.Namespace, device: Accelerator) -> dict[str, Any]:
    space = same_space_at_32()
    torch.manual_seed(0)
    static = extract(OFASupernet(space, 3, N_CLASSES), ArchConfig.max(space))
    eager = sgd_step(static, static, device, args.batch_size, bf16_channels_last=True)
    compiled_net = copy.deepcopy(static)
    compiled = torch.compile(compiled_net)
    started = time.perf_counter()
    compiled_step = sgd_step(
        compiled_net, compiled, device, args.batch_size, bf16_channels_last=True
    )
    try:
        compiled_step()
        _sync(device)
    except Exception as exc:  # a backend missing on this machine: say so, keep the rest
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    compile_s = time.perf_counter() - started
    rates = timed({"eager": eager, "compiled": compiled_step}, args.batch_size, args, device)
    return {"images_per_s": rates, "compile_seconds": round(compile_s, 1)}


def cifar_ps(args: argparse.Namespace, device: Accelerator) -> dict[str, Any]:
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.data import load_dataset
    from ofa_fleet.training.config import TrainConfig
    from ofa_fleet.training.trainer import ProgressiveTrainer

    if args.smoke:
        spec, epochs = "digits", (1, 1, 1, 1)
    else:
        if not (args.cifar_dir / "train.tar.gz").is_file():
            return {"skipped": f"no CIFAR-10 archives in {args.cifar_dir}"}
        from cifar10_ofa_vs_scratch import unpack

        spec, epochs = str(unpack(args.cifar_dir, Path(tempfile.mkdtemp()))), args.epochs
    started = time.perf_counter()
    splits = load_dataset(spec, image_size=32)
    loaded = time.perf_counter() - started
    config = TrainConfig(epochs_per_phase=epochs, batch_size=args.cifar_batch_size)
    out = Path(tempfile.mkdtemp()) / "cifar10.ckpt"
    started = time.perf_counter()
    ProgressiveTrainer(splits, out, config, cpu_space(), accelerator=device).run()
    wall = time.perf_counter() - started
    history = load_checkpoint(out).figures.history
    phases: dict[str, list[float]] = {}
    for record in history:
        phases.setdefault(record["phase"], []).append(record["images_per_s"])
    return {
        "data": spec,
        "train_images": len(splits.train),
        "epochs_per_phase": list(epochs),
        "batch": args.cifar_batch_size,
        "load_seconds": round(loaded, 1),
        "wall_seconds": round(wall, 1),
        "images_per_s": {p: round(statistics.median(r), 1) for p, r in phases.items()},
        "top1_largest": history[-1]["val_top1_largest"],
        "top1_smallest": history[-1]["val_top1_smallest"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--cifar-dir", type=Path, default=DEFAULT_CIFAR)
    parser.add_argument("--epochs", type=int, nargs=4, default=(4, 2, 2, 2))
    parser.add_argument("--cifar-batch-size", type=int, default=256)
    parser.add_argument("--skip", nargs="*", default=(), choices=("throughput", "compile", "cifar"))
    parser.add_argument("--smoke", action="store_true", help="a few steps, digits")
    parser.add_argument(
        "--install-peer", action="store_true", help="pip-install the peer if absent (network)"
    )
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch_size, args.steps, args.repeats, args.warmup = 8, 2, 1, 1
        args.cifar_batch_size = 64
    device = resolve_accelerator(args.device)
    report: dict[str, Any] = {
        "device": device.name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    sections = {"throughput": throughput, "compile": compile_row, "cifar": cifar_ps}
    for name, section in sections.items():
        if name in args.skip:
            continue
        log(f"{name} ...")
        started = time.perf_counter()
        report[name] = section(args, device)
        report[name]["section_seconds"] = round(time.perf_counter() - started, 1)
        log(json.dumps(report[name]))
        if args.json_out:  # after each section: a run cut short keeps what it measured
            args.json_out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
