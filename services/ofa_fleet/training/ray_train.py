"""Progressive shrinking on many data-parallel workers, with Ray Train.

The driver (`train_on_ray`) starts a ``TorchTrainer`` whose workers each run the same
`ProgressiveTrainer` as a single process does, as one rank of a process group Ray Train
sets up (gloo on CPUs, NCCL on GPUs): same subnets every step, each rank its own slice
of every global batch, gradients averaged once a step (`training.collective`).

Checkpoints are this project's own file, written by rank 0 each epoch and handed to Ray
Train (`ray.train.report`), which keeps them under ``storage`` (a folder every node
can reach: a local folder on one machine, a shared volume on a cluster). When a worker
dies, Ray Train restarts the whole group from the newest one (``FailureConfig``); the
epoch that was cut short is trained again from its start, so the result is that of an
uninterrupted run. The driver mirrors every epoch's checkpoint to ``out``, so
``ofa-fleet train --resume`` continues from it with any number of workers, or none.

Progress: each rank posts its steps and images to a small actor a few times a second;
the driver folds them into one bar (the slowest rank's steps, every rank's images).

Imported only when workers are asked for: the single-process path needs no Ray.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import ray
import ray.train
import torch
from ray.train.torch import TorchConfig, TorchTrainer

from ofa_fleet.core.accelerator import accelerator_for
from ofa_fleet.core.checkpoint import Checkpoint, load_checkpoint
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.data import DataLoading, load_dataset
from ofa_fleet.errors import InvalidArgumentError, OfaFleetError
from ofa_fleet.storage.durable import write_atomic
from ofa_fleet.training.collective import TorchDistributed
from ofa_fleet.training.config import TrainConfig
from ofa_fleet.training.phases import Phase
from ofa_fleet.training.trainer import ProgressiveTrainer, TrainingObserver, TrainResult

CHECKPOINT_FILE = "supernet.ckpt"
POLL_INTERVAL_S = 0.25


class DistributedObserver(TrainingObserver, Protocol):
    """A `TrainingObserver` that also hears where each rank runs (and when it restarts)."""

    def worker_started(self, rank: int, pid: int, node: str) -> None: ...


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers, with what resources, and where Ray Train keeps checkpoints."""

    workers: int
    storage: Path
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_failures: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= 1024:
            raise InvalidArgumentError(f"--workers must lie in 1..1024, got {self.workers}")
        if not 0 < self.cpus_per_worker <= 256:
            raise InvalidArgumentError(
                f"--cpus-per-worker must lie in (0, 256], got {self.cpus_per_worker}"
            )
        if not 0 <= self.gpus_per_worker <= 16:
            raise InvalidArgumentError(
                f"--gpus-per-worker must lie in 0..16, got {self.gpus_per_worker}"
            )
        if not 0 <= self.max_failures <= 100:
            raise InvalidArgumentError(
                f"--max-failures must lie in 0..100, got {self.max_failures}"
            )


@dataclass(frozen=True)
class DataSpec:
    """What every worker loads (the path must be readable on every node)."""

    spec: str
    image_size: int
    val_fraction: float
    seed: int
    loading: DataLoading


def train_on_ray(
    data: DataSpec,
    out: Path,
    plan: WorkerPlan,
    observer: DistributedObserver,
    *,
    config: TrainConfig | None = None,
    space: SearchSpace | None = None,
    resume: bool = False,
    fixed_cluster: bool = False,
) -> TrainResult:
    """Train (``config`` and ``space``) or continue ``out`` (``resume``) on ``plan``'s workers.

    Ray must already be started or joined by the caller. ``fixed_cluster``: the cluster
    will not grow (a local Ray), so workers it cannot place are an error now rather than
    a wait that never ends; a joined cluster may autoscale, and Ray Train waits for it.
    Returns once the last epoch's checkpoint is at ``out``.
    """
    _check_resources(plan, fixed_cluster)
    out = Path(out)
    start: dict[str, Any] = {}
    if resume:
        # Through the object store: workers on other nodes need not see ``out``.
        start["resume_ref"] = ray.put(out.read_bytes())
    else:
        if config is None or space is None:
            raise InvalidArgumentError("a new run needs a config and a search space")
        start["config"] = config.to_dict()
        start["space"] = space.to_dict()
    board = _ProgressBoard.remote()  # type: ignore[attr-defined]
    storage = plan.storage.resolve()
    run_name = f"{out.stem}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    gpu = plan.gpus_per_worker > 0
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            **start,
            "data": asdict(data) | {"loading": asdict(data.loading)},
            "out": str(out),
            "board": board,
            "threads": max(1, int(plan.cpus_per_worker)),
        },
        torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=plan.workers,
            use_gpu=gpu,
            resources_per_worker={"CPU": plan.cpus_per_worker}
            | ({"GPU": plan.gpus_per_worker} if gpu else {}),
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=str(storage),
            failure_config=ray.train.FailureConfig(max_failures=plan.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
    )
    run_dir = storage / run_name
    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as exc:  # reported on the driver's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
    thread.start()
    relay = _ProgressRelay(observer, lambda name: _mirror(run_dir / name, out))
    while thread.is_alive():
        thread.join(POLL_INTERVAL_S)
        relay.forward(ray.get(board.drain.remote()))
    relay.forward(ray.get(board.drain.remote()))
    if "error" in outcome:
        raise _training_error(outcome["error"])
    result = outcome["result"]
    if result.checkpoint is None:
        raise OfaFleetError("Ray Train finished without a checkpoint")
    with result.checkpoint.as_directory() as directory:
        _mirror(Path(directory), out)
    shutil.rmtree(run_dir, ignore_errors=True)  # `out` holds the result; nothing to resume
    final = load_checkpoint(out)
    return TrainResult(out, final.version, final.figures)


def check_placeable(plan: WorkerPlan, resources: dict[str, float]) -> None:
    """Refuse a plan that a cluster of fixed ``resources`` (this machine's) cannot place,
    which Ray would otherwise wait on for ever."""
    for resource, each in (("CPU", plan.cpus_per_worker), ("GPU", plan.gpus_per_worker)):
        have = resources.get(resource, 0)
        if each > 0 and plan.workers * each > have:
            raise InvalidArgumentError(
                f"{plan.workers} workers x {each:g} {resource} need "
                f"{plan.workers * each:g} {resource}s; this machine's Ray has {have:g}: "
                "use fewer --workers or less per worker, or join a larger cluster"
            )


def _check_resources(plan: WorkerPlan, fixed_cluster: bool) -> None:
    cluster = ray.cluster_resources()
    if fixed_cluster:
        check_placeable(plan, cluster)
    if plan.gpus_per_worker > 0:
        if not torch.distributed.is_nccl_available():
            raise InvalidArgumentError(
                "--gpus-per-worker needs NCCL, and this torch build has none "
                f"(torch {torch.__version__}, CUDA {torch.version.cuda}); use CPU workers"
            )
        if cluster.get("GPU", 0) <= 0:
            raise InvalidArgumentError(
                f"--gpus-per-worker {plan.gpus_per_worker}: the Ray cluster has no GPU"
            )
    if cluster.get("CPU", 0) < plan.cpus_per_worker:
        raise InvalidArgumentError(
            f"--cpus-per-worker {plan.cpus_per_worker}: the largest the Ray cluster can give "
            f"is {cluster.get('CPU', 0)}"
        )


def _training_error(exc: BaseException) -> BaseException:
    """Ray Train's failure as one line: the worker's own error when there is one."""
    if isinstance(exc, OfaFleetError | KeyboardInterrupt):
        return exc
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OfaFleetError):
            return cause
        cause = cause.__cause__ or getattr(cause, "cause", None)
    text = str(exc).strip().splitlines()
    first = next((line for line in text if line.strip()), type(exc).__name__)
    return OfaFleetError(f"training on Ray failed: {first}")


def _mirror(directory: Path, out: Path) -> None:
    """Copy the checkpoint file in ``directory`` to ``out``, whole or not at all."""
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, (directory / CHECKPOINT_FILE).read_bytes())


@ray.remote(num_cpus=0)
class _ProgressBoard:
    """Where ranks post progress and the driver collects it."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def post(self, event: tuple[Any, ...]) -> None:
        self.events.append(event)

    def drain(self) -> list[tuple[Any, ...]]:
        events, self.events = self.events, []
        return events


class _RankObserver:
    """A rank's observer: posts to the board (fire and forget; never waits on it)."""

    def __init__(self, board: Any, rank: int) -> None:
        self.board = board
        self.rank = rank
        board.post.remote(("worker", rank, os.getpid(), socket.gethostname()))

    def phase_started(self, phase: Phase, epoch: int, steps_per_epoch: int) -> None:
        self.board.post.remote(("phase", self.rank, asdict(phase), epoch, steps_per_epoch))

    def steps_done(self, steps: int, images: int, loss: float) -> None:
        self.board.post.remote(("steps", self.rank, steps, images, loss))

    def epoch_done(self, record: dict[str, Any]) -> None:
        self.board.post.remote(("epoch", self.rank, record))


class _ProgressRelay:
    """Folds the ranks' events into one observer's calls, on the driver."""

    def __init__(self, observer: DistributedObserver, mirror: Callable[[str], None]) -> None:
        self.observer = observer
        self.mirror = mirror
        self.steps: dict[int, int] = {}
        self.shown = 0
        self.loss = 0.0
        self.images = 0

    def forward(self, events: list[tuple[Any, ...]]) -> None:
        for event in events:
            kind, rank = event[0], event[1]
            if kind == "worker":
                self.observer.worker_started(rank, event[2], event[3])
            elif kind == "phase" and rank == 0:
                fields, epoch, steps = event[2:]
                self.observer.phase_started(Phase(**fields), epoch, steps)
                self.steps = {}
                self.shown = 0
            elif kind == "steps":
                self.steps[rank] = self.steps.get(rank, 0) + event[2]
                if rank == 0:  # every rank counts the same global images; take one
                    self.images += event[3]
                    self.loss = event[4]
            elif kind == "saved":
                self.mirror(event[2])
            elif kind == "epoch":
                self.observer.epoch_done(event[2])
        slowest = min(self.steps.values(), default=0)
        if slowest > self.shown or self.images:
            self.observer.steps_done(slowest - self.shown, self.images, self.loss)
            self.shown, self.images = slowest, 0


class RayTrainSink:
    """Checkpoints through Ray Train: rank 0 writes the file, every rank reports.

    After Ray Train has stored rank 0's checkpoint, the driver hears its folder's name
    and mirrors it to ``out``.
    """

    def __init__(self, board: Any, rank: int) -> None:
        self.board = board
        self.rank = rank

    def save(self, write: Callable[[Path], str], record: dict[str, Any]) -> str:
        metrics = {key: value for key, value in record.items() if _plain(value)}
        if self.rank != 0:
            ray.train.report(metrics, checkpoint=None)
            return ""
        progress = record.get("progress", {})
        name = f"epoch-{progress.get('phase', 0):02d}-{progress.get('epoch', 0):04d}"
        with tempfile.TemporaryDirectory(prefix="ofa-fleet-ckpt-") as directory:
            version = write(Path(directory) / CHECKPOINT_FILE)
            checkpoint = ray.train.Checkpoint.from_directory(directory)
            ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=name)
        self.board.post.remote(("saved", self.rank, name))
        return version


def _plain(value: Any) -> bool:
    return isinstance(value, int | float | str | bool)


def _worker_loop(config: dict[str, Any]) -> None:
    """One rank: load the data, restore where the group left off, train."""
    context = ray.train.get_context()
    rank = context.get_world_rank()
    torch.set_num_threads(config["threads"])
    accelerator = accelerator_for(ray.train.torch.get_device())
    collective = TorchDistributed(accelerator.device)
    data = dict(config["data"])
    loading = DataLoading(**data.pop("loading"))
    splits = load_dataset(**data, loading=loading)
    board = config["board"]
    observer = _RankObserver(board, rank)
    sink = RayTrainSink(board, rank)
    out = Path(config["out"])
    with accelerator.selected():
        source = _restart_point(config)
        if source is not None:
            trainer = ProgressiveTrainer.resume(
                splits,
                out,
                observer,
                source=source,
                accelerator=accelerator,
                collective=collective,
                checkpoints=sink,
            )
        else:
            trainer = ProgressiveTrainer(
                splits,
                out,
                TrainConfig.from_dict(config["config"]),
                SearchSpace.from_dict(config["space"]),
                observer,
                accelerator=accelerator,
                collective=collective,
                checkpoints=sink,
            )
        trainer.run()


def _restart_point(config: dict[str, Any]) -> Checkpoint | None:
    """Where this group starts: Ray Train's newest checkpoint after a failure, else the
    checkpoint ``--resume`` named, else nowhere (a new run)."""
    restored = ray.train.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as directory:
            return load_checkpoint(Path(directory) / CHECKPOINT_FILE)
    if "resume_ref" in config:
        return _checkpoint_from_bytes(ray.get(config["resume_ref"]))
    return None


def _checkpoint_from_bytes(payload: bytes) -> Checkpoint:
    with tempfile.TemporaryDirectory(prefix="ofa-fleet-resume-") as directory:
        path = Path(directory) / CHECKPOINT_FILE
        path.write_bytes(payload)
        return load_checkpoint(path)
