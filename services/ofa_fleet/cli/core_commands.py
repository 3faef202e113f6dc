"""`train`, `eval` and `export`: the OFA core from the command line."""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ofa_fleet.cli.common_flags import add_checkpoint_flag, add_json_flag
from ofa_fleet.errors import CheckpointError, InvalidArgumentError, NotFoundError

# torch, scikit-learn and onnx load in the handlers that use them, so that building the
# parser (and running the light commands) does not pay for them.
if TYPE_CHECKING:
    from ofa_fleet.core.accelerator import Accelerator
    from ofa_fleet.core.checkpoint import Checkpoint
    from ofa_fleet.core.space import SearchSpace
    from ofa_fleet.data import DataLoading
    from ofa_fleet.training.config import TrainConfig
    from ofa_fleet.training.trainer import ProgressiveTrainer, TrainingObserver


DEFAULT_SPACE = "cpu"
DEFAULT_IMAGE_SIZE = 32


def add_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a supernet by progressive shrinking")
    train.add_argument("--data", default="digits", help="digits, an ImageFolder dir or a .npz")
    train.add_argument("--out", required=True, type=Path, help="checkpoint file to write")
    train.add_argument(
        "--epochs-per-phase",
        help="epochs of every phase (N) or of each (FULL,KERNEL,DEPTH,EXPAND, e.g. 10,4,4,6)",
    )
    train.add_argument(
        "--init",
        type=Path,
        metavar="CKPT",
        help="fine-tune this supernet (its space, every weight but the classifier) on "
        "--data, with a short transfer schedule unless --epochs-per-phase says otherwise",
    )
    train.add_argument("--resume", action="store_true", help="continue from --out")
    train.add_argument(
        "--resume-if-exists",
        action="store_true",
        help="continue --out if it exists, else start (a job that may run again)",
    )
    train.add_argument("--force", action="store_true", help="overwrite an existing --out")
    train.add_argument(
        "--space", help="a preset space name (default: cpu) or a JSON file; not with --init"
    )
    train.add_argument(
        "--image-size",
        type=int,
        help="largest input side in pixels (default 32, or with --init its space's largest)",
    )
    train.add_argument("--batch-size", type=int, help="images per step (per worker)")
    train.add_argument(
        "--seed", type=int, default=0, help="seeds the split, the init and the subnet draws"
    )
    add_device_flag(train)
    add_data_loading_flags(train)
    workers = train.add_argument_group("many workers (Ray Train)")
    workers.add_argument("--workers", type=int, help="data-parallel workers on Ray Train")
    workers.add_argument(
        "--ray-address", help="join this Ray cluster (env RAY_ADDRESS; default: start one here)"
    )
    workers.add_argument(
        "--cpus-per-worker", type=float, default=1.0, help="CPUs Ray reserves per worker"
    )
    workers.add_argument(
        "--gpus-per-worker", type=float, help="default: 1 with --device cuda, else 0"
    )
    workers.add_argument(
        "--ray-storage",
        type=Path,
        help="folder every node can reach, for Ray Train's checkpoints (default: OUT.ray)",
    )
    workers.add_argument(
        "--max-failures", type=int, default=3, help="worker-group restarts before giving up"
    )
    add_json_flag(train)
    train.set_defaults(handler=run_train)

    for name, helptext in (("eval", "top-1 of one subnet"), ("export", "subnet to ONNX")):
        cmd = sub.add_parser(name, help=helptext)
        add_checkpoint_flag(cmd)
        cmd.add_argument("--arch", default="max", help="max, min, random or an arch string")
        cmd.add_argument("--seed", type=int, default=0, help="for --arch random")
        cmd.add_argument("--data", help="default: the checkpoint's own dataset")
        cmd.add_argument(
            "--no-recalibrate",
            dest="recalibrate",
            action="store_false",
            help="keep the BatchNorm statistics the supernet stores (an imported one's) "
            "instead of estimating the subnet's own from training data"
            + ("; export then needs no --data" if name == "export" else ""),
        )
        add_json_flag(cmd)
        if name == "export":
            cmd.add_argument("--out", required=True, type=Path, help="ONNX file to write")
            cmd.set_defaults(handler=run_export)
        else:
            add_device_flag(cmd)
            cmd.set_defaults(handler=run_eval)


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N"
    )


def add_data_loading_flags(parser: argparse.ArgumentParser) -> None:
    loading = parser.add_argument_group("data loading (ImageFolder datasets)")
    loading.add_argument(
        "--data-loading",
        choices=("auto", "memory", "stream"),
        default="auto",
        help="decode all images up front, or stream them from disk (auto: stream when "
        "they would not fit --data-memory)",
    )
    loading.add_argument(
        "--data-memory",
        type=int,
        default=4096,
        help="MiB the decoded images may take (in memory, or in flight when streaming)",
    )
    loading.add_argument(
        "--loader-workers", type=int, help="decoding processes per training process"
    )


def data_loading(args: argparse.Namespace) -> DataLoading:
    from ofa_fleet.data import DataLoading

    return DataLoading(args.data_loading, args.data_memory, args.loader_workers)


def load_space(text: str) -> SearchSpace:
    from ofa_fleet.core.space import PRESETS, SearchSpace

    if text in PRESETS:
        return PRESETS[text]()
    path = Path(text)
    if not path.is_file():
        raise NotFoundError(f"--space {text!r} is neither a preset ({list(PRESETS)}) nor a file")
    try:
        return SearchSpace.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise InvalidArgumentError(f"search space file {path} is not valid: {exc}") from exc


def run_train(args: argparse.Namespace) -> dict[str, Any]:
    if args.resume_if_exists and args.force:
        raise InvalidArgumentError("--resume-if-exists and --force contradict each other")
    args.resume = args.resume or (args.resume_if_exists and args.out.exists())
    if args.out.exists() and not (args.resume or args.force):
        raise CheckpointError(
            f"{args.out} exists; pass --resume to continue it or --force to start over"
        )
    if args.resume and not args.out.exists():
        raise CheckpointError(f"cannot resume: {args.out} does not exist")
    if args.init is not None and (args.resume or args.space is not None):
        raise InvalidArgumentError(
            "--init starts a fine-tune of that supernet, in its own space: it takes neither "
            "--resume nor --space"
        )
    if args.init is not None and args.workers is not None:
        raise InvalidArgumentError("--init runs in one process; leave out --workers")
    from ofa_fleet.console.progress import RichTrainingProgress

    with RichTrainingProgress() as observer:
        if args.workers is not None:
            from ofa_fleet.cli.distributed_train import train_with_workers

            result, device = train_with_workers(args, observer)
        else:
            trainer = make_trainer(args, observer)
            result, device = trainer.run(), trainer.accelerator.name
    last = result.figures.history[-1] if result.figures.history else {}
    return {
        "checkpoint": str(result.path),
        "supernet_version": result.version,
        "device": device,
        "workers": args.workers or 1,
        "epochs": result.figures.epochs,
        "images_seen": result.figures.images_seen,
        "cpu_seconds": round(result.figures.cpu_seconds, 1),
        "wall_seconds": round(result.figures.wall_seconds, 1),
        "val_top1_max": last.get("val_top1_largest"),
        "val_top1_min": last.get("val_top1_smallest"),
    }


def new_train_config(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """The settings of a new run (``base``: the defaults, or a fine-tune's) with the
    flags' overrides; a resumed run keeps its own."""
    from ofa_fleet.training.config import TrainConfig, parse_phase_epochs

    config = base or TrainConfig(seed=args.seed)
    if args.epochs_per_phase is not None:
        config = config.with_epochs(parse_phase_epochs(args.epochs_per_phase))
    if args.batch_size is not None:
        config = TrainConfig.from_dict({**config.to_dict(), "batch_size": args.batch_size})
    return config


def check_resumable(args: argparse.Namespace) -> Checkpoint:
    """The checkpoint at ``--out``, refused if the flags ask to change how it trains."""
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.training.config import TrainConfig, parse_phase_epochs

    checkpoint = load_checkpoint(args.out)
    stored = TrainConfig.from_dict(checkpoint.train_config)
    asked = args.epochs_per_phase
    if asked is not None and parse_phase_epochs(asked) != stored.epochs_per_phase:
        raise InvalidArgumentError(
            f"{args.out} was started with --epochs-per-phase "
            f"{list(stored.epochs_per_phase)}; resume without changing it"
        )
    return checkpoint


def make_trainer(args: argparse.Namespace, observer: TrainingObserver) -> ProgressiveTrainer:
    from ofa_fleet.core.accelerator import resolve_accelerator
    from ofa_fleet.data import load_dataset
    from ofa_fleet.training.checkpoint_data import VAL_FRACTION, load_checkpoint_data
    from ofa_fleet.training.trainer import ProgressiveTrainer

    accelerator = resolve_accelerator(args.device)
    loading = data_loading(args)
    if args.resume:
        checkpoint = check_resumable(args)
        splits = load_checkpoint_data(checkpoint, args.data, loading)
        return ProgressiveTrainer.resume(
            splits, args.out, observer, source=checkpoint, accelerator=accelerator
        )
    if args.init is not None:
        return fine_tuner(args, observer, accelerator, loading)
    config = new_train_config(args)
    splits = load_dataset(
        args.data,
        image_size=args.image_size or DEFAULT_IMAGE_SIZE,
        val_fraction=VAL_FRACTION,
        seed=args.seed,
        loading=loading,
    )
    space = load_space(args.space or DEFAULT_SPACE)
    return ProgressiveTrainer(splits, args.out, config, space, observer, accelerator=accelerator)


def fine_tuner(
    args: argparse.Namespace,
    observer: TrainingObserver,
    accelerator: Accelerator,
    loading: DataLoading,
) -> ProgressiveTrainer:
    """`train --init`: the supernet at ``args.init`` fine-tuned on ``args.data``."""
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.data import load_dataset
    from ofa_fleet.training.checkpoint_data import VAL_FRACTION
    from ofa_fleet.training.config import TrainConfig
    from ofa_fleet.training.trainer import ProgressiveTrainer

    init = load_checkpoint(args.init)
    source = init.train_config.get("imported_from") or {}
    origin = f", imported from {source['file']} (sha256 {source['sha256']})" if source else ""
    transfer = TrainConfig.for_transfer(
        args.seed, f"{args.init.name} (supernet {init.version}{origin})"
    )
    config = new_train_config(args, transfer)
    splits = load_dataset(
        args.data,
        image_size=args.image_size or init.space.resolutions[-1],
        val_fraction=VAL_FRACTION,
        seed=args.seed,
        loading=loading,
    )
    return ProgressiveTrainer.from_init(
        splits, args.out, config, init, observer, accelerator=accelerator
    )


def run_eval(args: argparse.Namespace) -> dict[str, Any]:
    from ofa_fleet.core.accelerator import resolve_accelerator
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.subnet import materialize, resolve_arch
    from ofa_fleet.training.checkpoint_data import load_checkpoint_data
    from ofa_fleet.training.evaluate import top1_accuracy

    accelerator = resolve_accelerator(args.device)
    checkpoint = load_checkpoint(args.checkpoint)
    arch = resolve_arch(args.arch, checkpoint, args.seed)
    splits = load_checkpoint_data(checkpoint, args.data)
    supernet = checkpoint.supernet.to(accelerator.device)
    calibration = splits if args.recalibrate else None
    subnet = materialize(supernet, arch, calibration, accelerator=accelerator)
    top1 = top1_accuracy(
        subnet.net, splits.val, splits.normalization, arch.resolution, accelerator=accelerator
    )
    return {
        "device": accelerator.name,
        "arch": str(arch),
        "top1": round(top1, 4),
        "macs": subnet.complexity.macs,
        "params": subnet.complexity.params,
    }


def run_export(args: argparse.Namespace) -> dict[str, Any]:
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.subnet import export_subnet, materialize, resolve_arch
    from ofa_fleet.training.checkpoint_data import load_checkpoint_data

    started = time.perf_counter()
    checkpoint = load_checkpoint(args.checkpoint)
    arch = resolve_arch(args.arch, checkpoint, args.seed)
    # Without recalibration the data only checks the export, so it may be left out.
    splits = load_checkpoint_data(checkpoint, args.data) if args.recalibrate or args.data else None
    subnet = materialize(checkpoint.supernet, arch, splits if args.recalibrate else None)
    exported = export_subnet(checkpoint, subnet, splits)
    write_atomically(args.out, exported.onnx_bytes)
    return {
        "arch": str(arch),
        "sha256": hashlib.sha256(exported.onnx_bytes).hexdigest(),
        "bytes": len(exported.onnx_bytes),
        "seconds": round(time.perf_counter() - started, 3),
        "out": str(args.out),
    }


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
