"""Supernet checkpoints: everything needed to resume training or to serve subnets.

A checkpoint records the search space, the dataset's classes and normalisation, the
training settings and figures, the progress through the phases, and a *supernet
version*: a hash of the weights, which downstream services use to tell that every model
cut from an older supernet is stale.

Files are written to a temporary name, flushed, then renamed over the target, so a crash
mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from ofa_fleet.core.space import SearchSpace
from ofa_fleet.core.supernet import OFASupernet
from ofa_fleet.errors import CheckpointError, InvalidArgumentError
from ofa_fleet.storage.durable import open_atomic

FORMAT = "ofa-fleet-supernet/1"


@dataclass
class TrainingFigures:
    """What training cost and how it went, kept across resumes.

    ``energy`` is the metered cost of each phase (phase name to `EnergyCost.to_dict()`,
    in phase order), every epoch's training, validation and checkpoint save included;
    ``energy_model`` is how its CPU seconds became joules and grams. Checkpoints from
    before metering load with both empty: the ledger then shows training as unmeasured.
    """

    epochs: int = 0
    images_seen: int = 0
    subnet_images: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    energy: dict[str, dict[str, float]] = field(default_factory=dict)
    energy_model: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "images_seen": self.images_seen,
            "subnet_images": self.subnet_images,
            "cpu_seconds": self.cpu_seconds,
            "wall_seconds": self.wall_seconds,
            "history": list(self.history),
            "energy": {phase: dict(cost) for phase, cost in self.energy.items()},
            "energy_model": dict(self.energy_model),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingFigures:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass
class Checkpoint:
    """A loaded checkpoint with its supernet built and its weights in place."""

    supernet: OFASupernet
    dataset: dict[str, Any]
    train_config: dict[str, Any]
    progress: dict[str, int]
    figures: TrainingFigures
    version: str
    teacher_state: dict[str, torch.Tensor] | None = None
    optimizer_state: dict[str, Any] | None = None

    @property
    def space(self) -> SearchSpace:
        return self.supernet.space

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.dataset["classes"])

    @property
    def finished(self) -> bool:
        return bool(self.progress.get("finished", False))


def supernet_version(state: dict[str, torch.Tensor]) -> str:
    """Hash of all weights and statistics, in key order: equal weights, equal version."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_checkpoint(
    path: Path,
    supernet: OFASupernet,
    *,
    dataset: dict[str, Any],
    train_config: dict[str, Any],
    progress: dict[str, int],
    figures: TrainingFigures,
    teacher_state: dict[str, torch.Tensor] | None,
    optimizer_state: dict[str, Any] | None,
) -> str:
    """Write atomically; return the supernet version written."""
    # On the CPU, in the standard layout: a checkpoint written on a GPU loads anywhere.
    state = {k: v.detach().cpu().clone().contiguous() for k, v in supernet.state_dict().items()}
    version = supernet_version(state)
    payload = {
        "format": FORMAT,
        "space": supernet.space.to_dict(),
        "model": {
            "in_channels": supernet.in_channels,
            "num_classes": supernet.num_classes,
            "dropout": supernet.dropout,
        },
        "dataset": dataset,
        "train_config": train_config,
        "progress": progress,
        "figures": figures.to_dict(),
        "version": version,
        "state": state,
        "teacher": to_cpu(teacher_state),
        "optimizer": to_cpu(optimizer_state),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_atomic(path) as handle:
        torch.save(payload, handle)
    return version


def to_cpu(value: Any) -> Any:
    """``value`` with every tensor inside (dicts, lists, tuples) copied to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_cpu(item) for item in value)
    return value


def first_line(exc: BaseException) -> str:
    """The first line of ``torch.load``'s error: the rest is paragraphs of advice."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_checkpoint(path: Path | str) -> Checkpoint:
    """Load and rebuild; a missing, corrupt or foreign file is a `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not a checkpoint: `ofa-fleet train` writes torch's zip archive, and "
            "this file is not one (a YAML profile, an ONNX model or a truncated copy?)"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {first_line(exc)}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an ofa-fleet supernet checkpoint ({FORMAT})")
    try:
        space = SearchSpace.from_dict(payload["space"])
        model = payload["model"]
        supernet = OFASupernet(
            space, model["in_channels"], model["num_classes"], model.get("dropout", 0.0)
        )
        supernet.load_state_dict(payload["state"])
    except (KeyError, RuntimeError, InvalidArgumentError) as exc:
        raise CheckpointError(f"checkpoint {path} does not match its search space: {exc}") from exc
    return Checkpoint(
        supernet=supernet.eval(),
        dataset=payload["dataset"],
        train_config=payload["train_config"],
        progress=payload["progress"],
        figures=TrainingFigures.from_dict(payload["figures"]),
        version=payload["version"],
        teacher_state=payload.get("teacher"),
        optimizer_state=payload.get("optimizer"),
    )
