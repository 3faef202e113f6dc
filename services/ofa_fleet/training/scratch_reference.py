"""The measured counterfactual unit: one specialized network trained from scratch.

Once-for-all's claim is that a subnet cut from the supernet is as good as the same
architecture trained on its own, so per-device training would cost, per profile, what it
takes to train one network from scratch to the accuracy the cut subnet already has. This
module measures that on this project's own data and code rather than quoting a paper:

(a) the subnet is materialized from the supernet (extraction, BatchNorm recalibration)
    and its held-out top-1 is the *target*;
(b) the same architecture, freshly initialised, is trained epoch by epoch (cosine
    schedule over ``epoch_cap`` epochs, the recipe of `training.scratch`) and evaluated
    on the held-out split after each epoch, until it reaches the target or the cap.

All of (b), the evaluations included, is metered; (a) is not, since it is what
specialization costs either way. Stopping at the first epoch that reaches the target is
a lower bound on what a person training per device would pay (they cannot know when to
stop), so the saving the ledger reports is, if anything, understated.

Two architectures, because the cost depends on the network: the *middle* one (every
choice at its middle value: the typical specialized model) and the *smallest* (what the
tight latency and memory budgets of small IoT devices get). Both sit where a fleet's
specialized models do, and both are cheap to train. The largest is left out on purpose:
it costs about twice the middle one per epoch (measured on digits: 6 against 2.6 CPU
seconds an epoch, the smallest 0.9), so it would make per-device training look dearer
and the saving bigger, and alone it would take the minute that first use can spare. The
reference therefore understates the counterfactual rather than overstating it. On the
first-use digits supernet the two reached their targets (0.983, 0.972) in 5 and 6 of 12
epochs: 8.9 CPU seconds a network on average, 28.5 s for the whole measurement.

The result is a `carbon.scratch_reference.ScratchReference`, kept beside the checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ofa_fleet.carbon.cost import EnergyCost, total
from ofa_fleet.carbon.meter import EnergyModel
from ofa_fleet.carbon.scratch_reference import DEFAULT_EPOCH_CAP, ScratchReference
from ofa_fleet.core.accelerator import CPU, Accelerator
from ofa_fleet.core.arch import ArchConfig, BlockChoice
from ofa_fleet.core.checkpoint import Checkpoint
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.data import DataSplits
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.subnet import materialize
from ofa_fleet.training.evaluate import top1_accuracy
from ofa_fleet.training.scratch import fresh_network, train_epochs

ProgressCallback = Callable[[str, int, int], None]  # (arch, epochs done, cap)


def reference_archs(space: SearchSpace) -> list[ArchConfig]:
    """The middle architecture and the smallest (see the module docstring)."""

    def middle(choices: Sequence[int]) -> int:
        return choices[len(choices) // 2]

    block = BlockChoice(middle(space.kernel_sizes), middle(space.expand_ratios))
    mid = ArchConfig(
        middle(space.resolutions), ((block,) * middle(space.depths),) * space.num_stages
    )
    return [mid, ArchConfig.min(space)]


def measure_scratch_reference(
    checkpoint: Checkpoint,
    splits: DataSplits,
    *,
    archs: Sequence[ArchConfig] | None = None,
    epoch_cap: int = DEFAULT_EPOCH_CAP,
    model: EnergyModel | None = None,
    seed: int = 0,
    threads: int | None = 1,
    progress: ProgressCallback | None = None,
    accelerator: Accelerator | None = None,
) -> ScratchReference:
    """Measure (a) and (b) of the module docstring for ``archs`` (default: `reference_archs`).

    ``checkpoint`` is a loaded `Checkpoint`, ``splits`` the data it was trained on
    (`load_checkpoint_data`): the target must be measured on the same held-out split.

    ``threads``: torch's intra-op threads while measuring (None: leave them). One by
    default: these small networks gain little from a second thread, and with another
    process busy on a two-core machine the threads' spin-waiting multiplied the CPU
    seconds of a scratch epoch thirtyfold (measured), which would be charged as energy.
    One thread is the cheapest way to train them, so the reference stays a lower bound.

    ``accelerator``: where the networks train and are scored (default: the CPU). The
    ledger meters CPU seconds, so on a GPU it records the host's share only.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _measure(checkpoint, splits, archs, epoch_cap, model, seed, progress, accelerator)
    finally:
        torch.set_num_threads(previous)


def _measure(
    checkpoint: Checkpoint,
    splits: DataSplits,
    archs: Sequence[ArchConfig] | None,
    epoch_cap: int,
    model: EnergyModel | None,
    seed: int,
    progress: ProgressCallback | None,
    accelerator: Accelerator | None,
) -> ScratchReference:
    if epoch_cap < 1:
        raise InvalidArgumentError(f"the epoch cap must be at least 1, got {epoch_cap}")
    model = model or EnergyModel.from_environment()
    supernet = checkpoint.supernet
    chosen = list(archs) if archs is not None else reference_archs(checkpoint.space)
    if not chosen:
        raise InvalidArgumentError("no architectures to measure")
    started = time.perf_counter()
    networks: list[dict[str, Any]] = []
    costs: list[EnergyCost] = []
    device = accelerator or CPU
    supernet.to(device.device)
    for arch in chosen:
        subnet = materialize(supernet, arch, splits, seed, accelerator=device)
        target = top1_accuracy(
            subnet.net, splits.val, splits.normalization, arch.resolution, accelerator=device
        )
        reached, epochs = 0.0, 0
        with model.meter() as reading:
            net = fresh_network(
                checkpoint.space, arch, supernet.in_channels, supernet.num_classes, seed=seed
            )
            for epochs in train_epochs(net, arch, splits, epoch_cap, seed=seed, accelerator=device):
                net.eval()
                reached = top1_accuracy(
                    net, splits.val, splits.normalization, arch.resolution, accelerator=device
                )
                net.train()
                if progress is not None:
                    progress(str(arch), epochs, epoch_cap)
                if reached >= target:
                    break
        costs.append(reading.cost)
        networks.append(
            {
                "arch": str(arch),
                "target_top1": target,
                "reached_top1": reached,
                "epochs": epochs,
                "reached": reached >= target,
                "cost": reading.cost.to_dict(),
                "wall_seconds": reading.wall_seconds,
            }
        )
    count = len(networks)
    mean = total(costs).scaled(1.0 / count)
    return ScratchReference(
        archs=tuple(n["arch"] for n in networks),
        target_top1=sum(n["target_top1"] for n in networks) / count,
        reached_top1=sum(n["reached_top1"] for n in networks) / count,
        cost_per_network=mean,
        epochs=sum(n["epochs"] for n in networks) / count,
        supernet_version=checkpoint.version,
        energy_model=model.describe(),
        epoch_cap=epoch_cap,
        networks=tuple(networks),
        wall_seconds=time.perf_counter() - started,
    )
