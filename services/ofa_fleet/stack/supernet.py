"""First use on one machine: a supernet trained on ``digits`` and its accuracy predictor.

Both are made once, in the foreground with progress bars, and kept beside each other in
the workdir (``supernet.ckpt``, ``supernet.ckpt.predictor``), so later starts reuse them
at once. The predictor is fitted here rather than left to the search server: it is the
same fit (the same seeded subnets, the file search looks for), but a person sees it
advance instead of waiting on a server that is not answering yet, and the search server
then starts at once.

The scratch reference (``supernet.ckpt.scratch.json``: two specialized networks trained
from scratch to their once-for-all accuracy, the counterfactual unit of the carbon
ledger) is measured here too, once per supernet version, so the first demo can already
say what training once saved. It adds about half a minute to first use on two cores
(measured on the first-use supernet: 37 s for the whole command, 28.5 s of it training
and evaluating the two networks, under other load).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ofa_fleet.carbon.scratch_reference import DEFAULT_EPOCH_CAP
from ofa_fleet.console.output import step_progress
from ofa_fleet.console.progress import RichTrainingProgress

# The first start's schedule (full, kernel, depth, width epochs): about half of
# `TrainConfig`'s (10, 4, 4, 6), so that a fresh machine serves its first fleet within
# minutes. `ofa-fleet train` keeps the full schedule; `--epochs-per-phase` overrides this.
FIRST_USE_EPOCHS = (5, 2, 2, 3)

# torch loads in the functions, so that importing the stack (as the CLI does) stays light.
if TYPE_CHECKING:
    from ofa_fleet.carbon.scratch_reference import ScratchReference
    from ofa_fleet.core.accelerator import Accelerator
    from ofa_fleet.core.arch import ArchConfig
    from ofa_fleet.core.checkpoint import Checkpoint
    from ofa_fleet.data import DataSplits


def ensure_supernet(path: Path, epochs_per_phase: int | None = None) -> None:
    """Train (or finish) the checkpoint at ``path``, then make sure its predictor exists."""
    ensure_trained(path, epochs_per_phase)
    ensure_predictor(path)
    ensure_scratch_reference(path)


def ensure_trained(path: Path, epochs_per_phase: int | None = None) -> None:
    """Train, resume an interrupted run, or do nothing if a finished checkpoint exists."""
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.core.space import cpu_space
    from ofa_fleet.data import load_dataset
    from ofa_fleet.training.checkpoint_data import VAL_FRACTION, load_checkpoint_data
    from ofa_fleet.training.config import TrainConfig
    from ofa_fleet.training.trainer import ProgressiveTrainer

    if path.exists():
        checkpoint = load_checkpoint(path)
        if checkpoint.finished:
            return
        splits = load_checkpoint_data(checkpoint)
        with RichTrainingProgress() as observer:
            ProgressiveTrainer.resume(splits, path, observer).run()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(TrainConfig(), epochs_per_phase=FIRST_USE_EPOCHS)
    if epochs_per_phase:
        config = config.with_epochs(epochs_per_phase)
    splits = load_dataset("digits", image_size=32, val_fraction=VAL_FRACTION, seed=config.seed)
    with RichTrainingProgress() as observer:
        ProgressiveTrainer(splits, path, config, cpu_space(), observer).run()


def ensure_predictor(checkpoint_path: Path, samples: int | None = None) -> Path:
    """The accuracy predictor search would fit for this checkpoint, fitted here if missing.

    It is search's own fit (`resolve_accuracy_predictor`: the same subnets, measured in
    parallel on Ray workers, the same file), on a local Ray that stops when it is done,
    or on the Ray this process already runs. ``samples``: subnets to measure (default:
    as many as search would, ``FIT_SAMPLES``).
    """
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.predictors.accuracy import AccuracyPredictor
    from ofa_fleet.search.accuracy_source import (
        FIT_SAMPLES,
        predictor_path,
        resolve_accuracy_predictor,
    )
    from ofa_fleet.search.bundle import SupernetBundle
    from ofa_fleet.search.workers import SearchWorkers
    from ofa_fleet.training.checkpoint_data import load_checkpoint_data

    path = predictor_path(checkpoint_path)
    checkpoint = load_checkpoint(checkpoint_path)
    if path.is_file() and AccuracyPredictor.load(path).supernet_version == checkpoint.version:
        return path
    splits = load_checkpoint_data(checkpoint)
    count = samples or FIT_SAMPLES
    with step_progress() as progress, local_ray(), torch_threads(1):
        task = progress.add_task("fitting the accuracy predictor", total=count)
        resolve_accuracy_predictor(
            checkpoint_path,
            checkpoint,
            lambda: SearchWorkers(SupernetBundle.of(checkpoint, splits, None)),
            samples=count,
            on_done=lambda done, total: progress.update(task, completed=done, total=total),
        )
    return path


def ensure_scratch_reference(checkpoint_path: Path) -> Path:
    """The carbon ledger's scratch reference for this checkpoint, measured if missing.

    Measured again when the file is for another supernet version or cannot be read (it
    is only ever written whole, so that means it was damaged by hand).
    """
    from ofa_fleet.carbon.scratch_reference import (
        load_scratch_reference,
        save_scratch_reference,
        scratch_reference_path,
    )
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.errors import CheckpointError
    from ofa_fleet.training.checkpoint_data import load_checkpoint_data

    checkpoint = load_checkpoint(checkpoint_path)
    try:
        if load_scratch_reference(checkpoint_path, checkpoint.version) is not None:
            return scratch_reference_path(checkpoint_path)
    except CheckpointError:
        pass
    reference = measure_with_progress(checkpoint, load_checkpoint_data(checkpoint))
    return save_scratch_reference(checkpoint_path, reference)


@contextlib.contextmanager
def local_ray() -> Iterator[None]:
    """A Ray on this machine's cores for the block (whatever RAY_ADDRESS says), stopped
    after it; a Ray this process already runs is used and left running."""
    import ray

    from ofa_fleet.search.ray_runtime import start_ray, stop_ray

    if ray.is_initialized():
        yield
        return
    address = os.environ.pop("RAY_ADDRESS", None)
    try:
        start_ray()
        yield
    finally:
        stop_ray()
        if address is not None:
            os.environ["RAY_ADDRESS"] = address


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Torch's intra-op threads for the block, restored after it.

    The accuracy MLP's many tiny steps are slower on two threads than on one, and far
    slower when another process keeps the second core busy (measured: 30x).
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_with_progress(
    checkpoint: Checkpoint,
    splits: DataSplits,
    archs: list[ArchConfig] | None = None,
    epoch_cap: int = DEFAULT_EPOCH_CAP,
    accelerator: Accelerator | None = None,
) -> ScratchReference:
    """`measure_scratch_reference` with a bar per network, counting its epochs."""
    from ofa_fleet.training.scratch_reference import measure_scratch_reference

    with step_progress() as progress:
        tasks: dict[str, Any] = {}

        def report(arch: str, done: int, cap: int) -> None:
            if arch not in tasks:
                tasks[arch] = progress.add_task(f"from scratch {arch[:24]}", total=cap)
            progress.update(tasks[arch], completed=done)

        return measure_scratch_reference(
            checkpoint,
            splits,
            archs=archs,
            epoch_cap=epoch_cap,
            progress=report,
            accelerator=accelerator,
        )
