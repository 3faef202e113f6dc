"""`ofa-fleet train --workers N`: the flags of a Ray Train run turned into one.

Kept apart from `core_commands` so that single-process training never imports Ray.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ofa_fleet.cli.core_commands import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_SPACE,
    check_resumable,
    data_loading,
    load_space,
    new_train_config,
)
from ofa_fleet.console.progress import RichTrainingProgress
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.training.trainer import TrainResult


def train_with_workers(
    args: argparse.Namespace, observer: RichTrainingProgress
) -> tuple[TrainResult, str]:
    """Train on ``--workers`` Ray Train workers; returns the result and where it ran."""
    import ray

    from ofa_fleet.search.ray_runtime import start_ray, stop_ray
    from ofa_fleet.training.checkpoint_data import VAL_FRACTION
    from ofa_fleet.training.ray_train import (
        DataSpec,
        WorkerPlan,
        check_placeable,
        train_on_ray,
    )

    device = (args.device or "auto").strip().lower()
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise InvalidArgumentError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda:"):
        raise InvalidArgumentError(
            f"with --workers, Ray Train gives each worker its GPU: say --device cuda, not {device}"
        )
    local = not (args.ray_address or os.environ.get("RAY_ADDRESS"))
    storage = args.ray_storage or args.out.with_name(f"{args.out.name}.ray")
    if local:  # the local Ray gets this machine's cores: refuse before starting it
        cpus_only = WorkerPlan(args.workers, storage, cpus_per_worker=args.cpus_per_worker)
        check_placeable(cpus_only, {"CPU": float(os.cpu_count() or 1)})
    start_ray(args.ray_address)
    try:
        gpus = args.gpus_per_worker
        if gpus is None:
            has_gpus = ray.cluster_resources().get("GPU", 0) > 0
            gpus = 1.0 if device == "cuda" or (device == "auto" and has_gpus) else 0.0
        if device == "cpu" and gpus > 0:
            raise InvalidArgumentError("--device cpu contradicts --gpus-per-worker > 0")
        plan = WorkerPlan(
            workers=args.workers,
            storage=storage,
            cpus_per_worker=args.cpus_per_worker,
            gpus_per_worker=gpus,
            max_failures=args.max_failures,
        )
        loading = data_loading(args)
        if args.resume:
            checkpoint = check_resumable(args)
            data = DataSpec(
                _shared_path(args.data or checkpoint.dataset["name"]),
                int(checkpoint.dataset["image_size"]),
                VAL_FRACTION,
                int(checkpoint.train_config.get("seed", 0)),
                loading,
            )
            result = train_on_ray(data, args.out, plan, observer, resume=True, fixed_cluster=local)
        else:
            data = DataSpec(
                _shared_path(args.data),
                args.image_size or DEFAULT_IMAGE_SIZE,
                VAL_FRACTION,
                args.seed,
                loading,
            )
            result = train_on_ray(
                data,
                args.out,
                plan,
                observer,
                config=new_train_config(args),
                space=load_space(args.space or DEFAULT_SPACE),
                fixed_cluster=local,
            )
    finally:
        stop_ray()
    kind = "cuda (nccl)" if plan.gpus_per_worker > 0 else "cpu (gloo)"
    return result, f"{plan.workers} x {kind}"


def _shared_path(spec: str) -> str:
    """A dataset path as every worker must read it: absolute (their working folder differs)."""
    path = Path(spec)
    return str(path.resolve()) if path.exists() else spec
