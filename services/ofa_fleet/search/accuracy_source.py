"""Where search's accuracy predictor comes from: a given file, or one fitted and kept.

Search cannot run without one, and an operator starting `serve search` on a fresh
checkpoint should not have to run another command first. So unless a file is named, the
predictor lives beside the checkpoint (``CKPT.predictor``): loaded when it was fitted for
this very supernet, otherwise fitted on the Ray workers (measuring subnets in parallel)
and written there atomically for the next start.

A fit is metered: the sampled subnets' Ray tasks in their workers, the rest (sampling,
putting the bundle in the object store, the MLP fit) in this process, whole-process scope
because the fit runs before a server serves and torch fits on threads of its own. The
predictor keeps that `EnergyCost` (``fit_cost``) and the energy model that priced it, for
the supernet's carbon ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ofa_fleet.carbon.meter import EnergyModel
from ofa_fleet.core.checkpoint import Checkpoint
from ofa_fleet.errors import NotFoundError
from ofa_fleet.predictors.accuracy import (
    AccuracyPredictor,
    AccuracySample,
    fit_accuracy_predictor,
    sample_archs_for_fit,
)
from ofa_fleet.search.task_cost import TaskTally
from ofa_fleet.search.workers import SearchWorkers

FIT_SAMPLES = 100


def predictor_path(checkpoint_path: Path) -> Path:
    return checkpoint_path.with_name(checkpoint_path.name + ".predictor")


def resolve_accuracy_predictor(
    checkpoint_path: Path,
    checkpoint: Checkpoint,
    measuring: Callable[[], SearchWorkers],
    explicit: Path | None = None,
    samples: int = FIT_SAMPLES,
    on_done: Callable[[int, int], None] | None = None,
) -> AccuracyPredictor:
    """The named predictor (which must fit this supernet), else the sidecar, else a fit.

    ``measuring`` makes workers holding this checkpoint's bundle (no predictor in it);
    it is called only when a fit is needed, so a kept predictor costs no extra bundle.
    """
    if explicit is not None:
        if not explicit.is_file():
            raise NotFoundError(f"accuracy predictor {explicit} does not exist")
        predictor = AccuracyPredictor.load(explicit)
        predictor.check_compatible(checkpoint.space, checkpoint.version)
        return predictor
    path = predictor_path(checkpoint_path)
    if path.is_file():
        predictor = AccuracyPredictor.load(path)
        if predictor.supernet_version == checkpoint.version:
            return predictor
    energy = EnergyModel.from_environment()
    tally = TaskTally()
    with energy.meter() as driver:
        archs = sample_archs_for_fit(checkpoint.space, samples, seed=0)
        measured = measuring().measure(
            archs, seed=0, should_stop=lambda: False, on_done=on_done, tally=tally
        )
        predictor = fit_accuracy_predictor(
            checkpoint.space,
            checkpoint.version,
            [AccuracySample(str(a), top1) for a, top1 in zip(archs, measured, strict=True)],
        )
    predictor.fit_cost = energy.cost_of(
        driver.cpu_seconds + tally.cpu_seconds, driver.joules + tally.joules
    )
    predictor.energy_model = energy.describe()
    predictor.save(path)
    return predictor
