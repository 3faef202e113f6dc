"""First use on one machine: a supernet trained on ``digits`` and its accuracy predictor.

Both are made once, in the foreground with progress bars, and kept beside each other in
the workdir (``supernet.ckpt``, ``supernet.ckpt.predictor``), so later starts reuse them
at once. The predictor is fitted here rather than left to the search server: it is the
same fit (the same seeded subnets, the file search looks for), but a person sees it
advance instead of waiting on a server that is not answering yet.
"""

from __future__ import annotations

from pathlib import Path

from ofa_fleet.cli.output import step_progress
from ofa_fleet.cli.progress import RichTrainingProgress


def ensure_supernet(path: Path, epochs_per_phase: int | None = None) -> None:
    """Train (or finish) the checkpoint at ``path``, then make sure its predictor exists."""
    ensure_trained(path, epochs_per_phase)
    ensure_predictor(path)


def ensure_trained(path: Path, epochs_per_phase: int | None = None) -> None:
    """Train, resume an interrupted run, or do nothing if a finished checkpoint exists."""
    from ofa_fleet.core.space import cpu_space
    from ofa_fleet.data import load_dataset
    from ofa_fleet.training.checkpoint import load_checkpoint
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
    config = TrainConfig()
    if epochs_per_phase:
        config = config.with_epochs(epochs_per_phase)
    splits = load_dataset("digits", image_size=32, val_fraction=VAL_FRACTION, seed=config.seed)
    with RichTrainingProgress() as observer:
        ProgressiveTrainer(splits, path, config, cpu_space(), observer).run()


def ensure_predictor(checkpoint_path: Path, samples: int | None = None) -> Path:
    """The accuracy predictor search would fit for this checkpoint, fitted here if missing.

    ``samples``: subnets to measure (default: as many as search would, ``FIT_SAMPLES``).
    """
    from ofa_fleet.predictors.accuracy import (
        AccuracyPredictor,
        fit_accuracy_predictor,
        sample_archs_for_fit,
    )
    from ofa_fleet.predictors.accuracy_samples import measure_samples
    from ofa_fleet.search.accuracy_source import FIT_SAMPLES, sidecar_path
    from ofa_fleet.training.checkpoint import load_checkpoint
    from ofa_fleet.training.checkpoint_data import load_checkpoint_data

    path = sidecar_path(checkpoint_path)
    checkpoint = load_checkpoint(checkpoint_path)
    if path.is_file() and AccuracyPredictor.load(path).supernet_version == checkpoint.version:
        return path
    splits = load_checkpoint_data(checkpoint)
    archs = sample_archs_for_fit(checkpoint.space, samples or FIT_SAMPLES, seed=0)
    with step_progress() as progress:
        task = progress.add_task("fitting the accuracy predictor", total=len(archs))
        measured, cpu_seconds = measure_samples(
            checkpoint.supernet,
            splits,
            archs,
            lambda done, _total: progress.update(task, completed=done),
        )
    predictor = fit_accuracy_predictor(
        checkpoint.space,
        checkpoint.version,
        measured,
        cost={"sample_cpu_seconds": cpu_seconds},
    )
    predictor.save(path)
    return path
