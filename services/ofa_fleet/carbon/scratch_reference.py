"""The measured counterfactual unit, as kept: one specialized network trained from scratch.

`training.scratch_reference` measures it (why and how is told there); this is the record
the carbon ledger reads. It is kept beside the checkpoint as ``CKPT.scratch.json``,
written atomically, and read back only for the supernet version it was measured on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.errors import CheckpointError
from ofa_fleet.storage.durable import write_atomic

FORMAT = "ofa-fleet.scratch-reference/1"
# On digits the middle architecture reaches its cut subnet's top-1 within a few epochs;
# the cap bounds a network that never does (it then counts at the cap).
DEFAULT_EPOCH_CAP = 12


@dataclass(frozen=True)
class ScratchReference:
    """Means over the networks trained: what one specialized network costs from scratch."""

    archs: tuple[str, ...]
    target_top1: float
    reached_top1: float
    cost_per_network: EnergyCost
    epochs: float
    supernet_version: str
    energy_model: dict[str, Any] = field(default_factory=dict)
    epoch_cap: int = DEFAULT_EPOCH_CAP
    # One record per network: arch, target_top1, reached_top1, epochs, reached, cost, wall.
    networks: tuple[dict[str, Any], ...] = ()
    wall_seconds: float = 0.0  # the whole measurement, (a) included

    @property
    def all_reached(self) -> bool:
        return all(n.get("reached", False) for n in self.networks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "archs": list(self.archs),
            "target_top1": self.target_top1,
            "reached_top1": self.reached_top1,
            "cost_per_network": self.cost_per_network.to_dict(),
            "epochs": self.epochs,
            "supernet_version": self.supernet_version,
            "energy_model": dict(self.energy_model),
            "epoch_cap": self.epoch_cap,
            "networks": [dict(n) for n in self.networks],
            "wall_seconds": self.wall_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScratchReference:
        return cls(
            archs=tuple(str(a) for a in data["archs"]),
            target_top1=float(data["target_top1"]),
            reached_top1=float(data["reached_top1"]),
            cost_per_network=EnergyCost.from_dict(data["cost_per_network"]),
            epochs=float(data["epochs"]),
            supernet_version=str(data["supernet_version"]),
            energy_model=dict(data.get("energy_model") or {}),
            epoch_cap=int(data.get("epoch_cap", DEFAULT_EPOCH_CAP)),
            networks=tuple(dict(n) for n in data.get("networks", ())),
            wall_seconds=float(data.get("wall_seconds", 0.0)),
        )


def scratch_reference_path(checkpoint_path: Path) -> Path:
    """``CKPT.scratch.json``: the reference lives beside the checkpoint it was measured for."""
    return checkpoint_path.with_name(checkpoint_path.name + ".scratch.json")


def save_scratch_reference(checkpoint_path: Path, reference: ScratchReference) -> Path:
    """Write ``CKPT.scratch.json`` atomically: a reader sees the old file or the new one."""
    path = scratch_reference_path(Path(checkpoint_path))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(reference.to_dict(), indent=1).encode())
    return path


def load_scratch_reference(checkpoint_path: Path, supernet_version: str) -> ScratchReference | None:
    """The reference measured for this supernet version; None when missing or for another.

    A file that exists but cannot be read is a `CheckpointError`, not a silent None.
    """
    path = scratch_reference_path(Path(checkpoint_path))
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a scratch reference ({FORMAT})")
        reference = ScratchReference.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"scratch reference {path} cannot be read: {exc}") from exc
    return reference if reference.supernet_version == supernet_version else None
