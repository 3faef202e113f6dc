"""Search work on Ray: evolutions, re-ranking and export spread over workers.

The bundle (weights, data, accuracy predictor) is put in the object store once; every
task names it by reference, so no weights travel per task. An evolution is one task
that scores beside its predictor and streams its progress back (`worker.evolve`);
re-ranking is one task per worker slot. Tasks are retried when their worker dies (Ray's
``max_retries``), so a search survives losing a worker; a search whose caller leaves
cancels what it started.

Every search task meters itself in its worker (`task_cost.metered`, or `metered_steps` for
the evolution's generator); the methods add what their tasks drew to the caller's
`TaskTally` when one is given.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import ray
from ray.exceptions import GetTimeoutError, RayError, RayTaskError

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.errors import CancelledError, OfaFleetError, UnavailableError
from ofa_fleet.hardware.profile import HardwareProfile
from ofa_fleet.search import worker
from ofa_fleet.search.bundle import SupernetBundle
from ofa_fleet.search.candidates import Budget, Candidate, rerank_order
from ofa_fleet.search.evolution import EvolutionSettings, Progress
from ofa_fleet.search.task_cost import Metered, TaskTally, metered, metered_steps

RETRIES = 3
POLL_SECONDS = 0.05

_evolve = ray.remote(num_cpus=1, max_retries=RETRIES)(metered_steps(worker.evolve))
_measure = ray.remote(num_cpus=1, max_retries=RETRIES)(metered(worker.measure_top1))
_rerank = ray.remote(num_cpus=1, max_retries=RETRIES)(metered(worker.rerank))
_time = ray.remote(num_cpus=1, max_retries=RETRIES)(metered(worker.time_model))
_pid = ray.remote(num_cpus=1)(worker.worker_pid)
_warm = ray.remote(num_cpus=1, max_retries=RETRIES)(worker.warm)


@dataclass(frozen=True)
class ExportResult:
    onnx_bytes: bytes
    sha256: str
    max_abs_diff: float


@dataclass(frozen=True)
class RerankResult:
    """Each candidate's measured top-1, in order, and the best one's model."""

    measured_top1: tuple[float, ...]
    best: int  # index into the candidates re-ranked
    exported: ExportResult


class SearchWorkers:
    """The Ray side of search for one supernet bundle.

    Args:
        bundle: what workers need; put in the object store here, once.
        slots: how many tasks to run at once (default: the cluster's CPUs).
    """

    def __init__(self, bundle: SupernetBundle, slots: int | None = None) -> None:
        self.version = bundle.version
        self._box = [ray.put(bundle)]
        self.slots = slots or max(1, int(ray.cluster_resources().get("CPU", 1)))

    def warm_up(self, pause: float = 0.5) -> list[int]:
        """Build the supernet in ``slots`` worker processes; returns their pids.

        Each task holds its worker for ``pause`` seconds so that the tasks land on
        distinct processes rather than queueing on the first one to start.
        """
        return sorted(set(ray.get([_warm.remote(self._box, pause) for _ in range(self.slots)])))

    def evolve(
        self,
        profile: HardwareProfile,
        settings: EvolutionSettings,
        budget: Budget,
        on_progress: Callable[[Progress], None],
        should_stop: Callable[[], bool] = lambda: False,
        tally: TaskTally | None = None,
    ) -> worker.Evolved:
        """One evolution for ``profile``, run in a worker (see `worker.evolve`);
        ``on_progress`` hears each generation as the task yields it."""
        # A generator task returns an ObjectRefGenerator; Ray's stubs say ObjectRef.
        steps = cast(
            ray.ObjectRefGenerator,
            _evolve.remote(
                self._box, [ray.put(profile)], worker.profile_key(profile), settings, budget
            ),
        )
        while True:
            if should_stop():
                ray.cancel(steps)
                raise CancelledError("search cancelled: the caller left or its deadline passed")
            ready, _ = ray.wait([steps], timeout=POLL_SECONDS)
            if not ready:
                continue
            try:
                ref = next(steps)
            except StopIteration:
                raise UnavailableError("a search task ended without its outcome") from None
            with _ray_errors():
                step = ray.get(ref, timeout=60)
            if isinstance(step, Metered):
                if tally is not None:
                    tally.add(step)
                return step.value
            on_progress(step)

    def measure(
        self,
        archs: Sequence[ArchConfig],
        seed: int,
        should_stop: Callable[[], bool],
        on_done: Callable[[int, int], None] | None = None,
        tally: TaskTally | None = None,
    ) -> list[float]:
        """Real held-out top-1 of each arch, measured in parallel."""
        refs = [_measure.remote(self._box, str(a), seed) for a in archs]
        return [float(v) for v in gather(refs, should_stop, on_done, tally)]

    def rerank(
        self,
        candidates: Sequence[Candidate],
        seed: int,
        should_stop: Callable[[], bool],
        tally: TaskTally | None = None,
    ) -> RerankResult:
        """Real held-out top-1 of each candidate, and the best one (`rerank_order`)
        exported and verified: the candidates are cut into one share per slot, in order,
        and each task exports the best of its share (see `worker.rerank`)."""
        if not candidates:
            raise ValueError("nothing to re-rank")
        size = math.ceil(len(candidates) / min(self.slots, len(candidates)))
        shares = [candidates[i : i + size] for i in range(0, len(candidates), size)]
        refs = [
            _rerank.remote(
                self._box, [str(c.arch) for c in share], [c.latency_ms for c in share], seed
            )
            for share in shares
        ]
        parts = gather(refs, should_stop, tally=tally)
        measured = tuple(float(top1) for part in parts for top1 in part["top1"])
        # Each share's best, as an index over all candidates; the first best wins ties.
        offsets = [i * size for i in range(len(parts))]
        leaders = [offset + part["best"] for offset, part in zip(offsets, parts, strict=True)]
        best = max(leaders, key=lambda i: rerank_order(measured[i], candidates[i].latency_ms))
        part = parts[leaders.index(best)]
        exported = ExportResult(part["onnx_bytes"], part["sha256"], part["max_abs_diff"])
        return RerankResult(measured, best, exported)

    def time_model(
        self,
        onnx_bytes: bytes,
        input_shape: tuple[int, ...],
        threads: int,
        graph_optimization: str,
        should_stop: Callable[[], bool],
        tally: TaskTally | None = None,
    ) -> float:
        """The model's latency timed on a worker (see `worker.time_model`)."""
        task = _time.remote(onnx_bytes, input_shape, threads, graph_optimization)
        (latency,) = gather([task], should_stop, tally=tally)
        return float(latency)

    def pids(self) -> list[int]:
        return sorted(set(ray.get([_pid.remote() for _ in range(self.slots)])))


def gather(
    refs: list[Any],
    should_stop: Callable[[], bool],
    on_done: Callable[[int, int], None] | None = None,
    tally: TaskTally | None = None,
) -> list[Any]:
    """Values of metered ``refs`` in order; cancels them all when ``should_stop`` turns true.

    What the tasks drew goes into ``tally``. A task that failed with one of our own errors
    re-raises it (an invalid arch stays INVALID_ARGUMENT); a worker lost more often than
    the retries allow is UNAVAILABLE.
    """
    pending = list(refs)
    while pending:
        if should_stop():
            for ref in refs:
                ray.cancel(ref)
            raise CancelledError("search cancelled: the caller left or its deadline passed")
        waiting = len(pending)
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_SECONDS)
        if on_done is not None and len(pending) < waiting:  # news only, not every poll
            on_done(len(refs) - len(pending), len(refs))
    with _ray_errors():
        results: list[Metered[Any]] = ray.get(refs, timeout=60)
    if tally is not None:
        for result in results:
            tally.add(result)
    return [result.value for result in results]


@contextlib.contextmanager
def _ray_errors() -> Iterator[None]:
    """Ray's errors on fetching a finished task's value, as ours: a task that failed with
    one of our own errors re-raises it (an invalid arch stays INVALID_ARGUMENT, an
    infeasible profile FAILED_PRECONDITION); a lost worker or store is UNAVAILABLE."""
    try:
        yield
    except RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, OfaFleetError):
            raise cause from None
        raise
    except GetTimeoutError as exc:  # it was ready a moment ago: the object store is gone
        raise UnavailableError(f"Ray results could not be fetched: {exc}") from exc
    except RayError as exc:
        raise UnavailableError(f"a search worker was lost beyond {RETRIES} retries: {exc}") from exc
