"""Accuracy predictor: OFA's recipe, an MLP from the arch encoding to top-1.

Measuring one subnet's accuracy costs an extraction, a BatchNorm recalibration and a
pass over the held-out split (seconds); search needs thousands a second. So a sample
of subnets is measured once, and a small MLP (three hidden layers of 400, as in OFA)
learns top-1 from `ArchConfig.encode`. Part of the sample is held out, never trained
on, and the predictor records how well it ranks and fits those (Kendall tau, RMSE in
top-1 points): search trusts it only as far as those figures say.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.core.arch import ArchConfig, encoding_length
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import CheckpointError, InvalidArgumentError, NotFoundError

FORMAT = "ofa-fleet.accuracy-predictor/1"
HIDDEN = 400


@dataclass(frozen=True)
class AccuracySample:
    """One measured subnet: its arch string and its held-out top-1 (0-1)."""

    arch: str
    top1: float


@dataclass(frozen=True)
class FitQuality:
    """How the predictor does on subnets it was not trained on."""

    kendall_tau: float
    rmse_points: float
    max_error_points: float
    train_samples: int
    holdout_samples: int


def _mlp(inputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, 1),
    )


class AccuracyPredictor:
    """Predicts top-1 (0-1) of subnets of one supernet."""

    def __init__(
        self,
        space: SearchSpace,
        supernet_version: str,
        network: nn.Sequential,
        base_top1: float,
        quality: FitQuality,
        samples: Sequence[AccuracySample],
        cost: dict[str, float],
        *,
        fit_cost: EnergyCost | None = None,
        energy_model: dict[str, Any] | None = None,
    ) -> None:
        self.space = space
        self.supernet_version = supernet_version
        self.network = network.eval()
        self.base_top1 = base_top1
        self.quality = quality
        self.samples = tuple(samples)
        self.cost = dict(cost)
        # Set by whoever metered the fit (sampling on Ray workers included); None when
        # nobody did, which the ledger shows as unmeasured rather than as zero.
        self.fit_cost = fit_cost
        self.energy_model = dict(energy_model) if energy_model is not None else None

    def predict_encoded(self, encodings: np.ndarray) -> np.ndarray:
        """Top-1 for rows of `ArchConfig.encode` (n, length), clipped to 0..1."""
        return predict_top1(self.network, self.base_top1, encodings)

    def predict(self, archs: Sequence[ArchConfig]) -> np.ndarray:
        return self.predict_encoded(np.stack([a.encode(self.space) for a in archs]))

    def check_compatible(self, space: SearchSpace, supernet_version: str) -> None:
        if space.fingerprint != self.space.fingerprint or supernet_version != self.supernet_version:
            raise InvalidArgumentError(
                f"accuracy predictor was fitted for supernet {self.supernet_version}, not "
                f"{supernet_version}; fit one for this checkpoint (ofa-fleet predictor fit)"
            )

    def save(self, path: Path) -> None:
        """Write atomically: a reader never sees half a predictor."""
        buffer = io.BytesIO()
        self.save_to(buffer)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(path)

    def save_to(self, stream: BinaryIO) -> None:
        torch.save(
            {
                "format": FORMAT,
                "space": self.space.to_dict(),
                "supernet_version": self.supernet_version,
                "state": self.network.state_dict(),
                "base_top1": self.base_top1,
                "quality": asdict(self.quality),
                "samples": [asdict(s) for s in self.samples],
                "cost": self.cost,
                "fit_cost": self.fit_cost.to_dict() if self.fit_cost is not None else None,
                "energy_model": self.energy_model,
            },
            stream,
        )

    @classmethod
    def load(cls, path: Path) -> AccuracyPredictor:
        if not path.is_file():
            raise NotFoundError(f"accuracy predictor {path} does not exist")
        with path.open("rb") as stream:
            return cls.load_from(stream, str(path))

    @classmethod
    def load_from(cls, stream: BinaryIO, name: str) -> AccuracyPredictor:
        try:
            data: dict[str, Any] = torch.load(stream, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{name} is not an accuracy predictor: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"{name} is not an accuracy predictor ({FORMAT})")
        space = SearchSpace.from_dict(data["space"])
        network = _mlp(encoding_length(space))
        network.load_state_dict(data["state"])
        return cls(
            space,
            data["supernet_version"],
            network,
            float(data["base_top1"]),
            FitQuality(**data["quality"]),
            [AccuracySample(**s) for s in data["samples"]],
            data["cost"],
            fit_cost=EnergyCost.from_dict(data["fit_cost"]) if data.get("fit_cost") else None,
            energy_model=data.get("energy_model"),
        )


def fit_accuracy_predictor(
    space: SearchSpace,
    supernet_version: str,
    samples: Sequence[AccuracySample],
    holdout_fraction: float = 0.2,
    seed: int = 0,
    epochs: int = 1000,
    cost: dict[str, float] | None = None,
) -> AccuracyPredictor:
    """Fit on a seeded share of ``samples``; report quality on the rest."""
    if len(samples) < 10:
        raise InvalidArgumentError(f"need at least 10 measured subnets to fit, got {len(samples)}")
    if not 0.0 < holdout_fraction < 1.0:
        raise InvalidArgumentError(f"holdout fraction must be in (0, 1), got {holdout_fraction}")
    started = time.process_time()
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    holdout_count = max(2, round(len(samples) * holdout_fraction))
    held, trained = order[:holdout_count], order[holdout_count:]
    encodings = np.stack([ArchConfig.parse(s.arch, space).encode(space) for s in samples])
    targets = np.array([s.top1 for s in samples], dtype=np.float32)
    network, base = fit_network(encodings[trained], targets[trained], epochs, seed)
    predicted = predict_top1(network, base, encodings[held])
    errors = (predicted - targets[held]) * 100.0
    # Imported here, where a fit needs it: scipy.stats took about 1 s to import, paid by
    # every search worker and server that only predicts.
    from scipy.stats import kendalltau

    tau = kendalltau(predicted, targets[held]).statistic
    quality = FitQuality(
        kendall_tau=float(tau) if tau == tau else 0.0,  # NaN when every prediction ties
        rmse_points=float(np.sqrt(np.mean(errors**2))),
        max_error_points=float(np.max(np.abs(errors))),
        train_samples=len(trained),
        holdout_samples=len(held),
    )
    cost = {**(cost or {}), "fit_cpu_seconds": time.process_time() - started}
    return AccuracyPredictor(space, supernet_version, network, base, quality, samples, cost)


def fit_network(
    encodings: np.ndarray, targets: np.ndarray, epochs: int = 1000, seed: int = 0
) -> tuple[nn.Sequential, float]:
    """Train the MLP on (encoding, top-1) pairs; returns it and the mean it predicts around."""
    base = float(np.mean(targets))
    torch.manual_seed(seed)
    network = _mlp(encodings.shape[1])
    _train(network, encodings, (targets - base).astype(np.float32), epochs)
    return network, base


@torch.no_grad()
def predict_top1(network: nn.Sequential, base: float, encodings: np.ndarray) -> np.ndarray:
    network.eval()
    out = network(torch.from_numpy(np.asarray(encodings, dtype=np.float32)))
    return np.clip(out.squeeze(1).numpy() + base, 0.0, 1.0)


def _train(network: nn.Sequential, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y).unsqueeze(1)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    generator = torch.Generator().manual_seed(0)
    batch = 256
    network.train()
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), batch):
            index = order[start : start + batch]
            loss = nn.functional.mse_loss(network(inputs[index]), targets[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    network.eval()


def sample_archs_for_fit(space: SearchSpace, count: int, seed: int) -> list[ArchConfig]:
    """Distinct seeded random subnets (the largest and smallest included)."""
    rng = random.Random(seed)
    archs = {str(a): a for a in (ArchConfig.max(space), ArchConfig.min(space))}
    attempts = 0
    while len(archs) < count and attempts < count * 100:
        arch = ArchConfig.sample(space, rng)
        archs.setdefault(str(arch), arch)
        attempts += 1
    return list(archs.values())[:count]
