"""Everything a search worker needs, as one value to put in Ray's object store once.

Weights and images are kept as NumPy arrays: Ray stores those out of band and workers on
a node map them from shared memory instead of copying, so ten workers cost one copy.
The rest (space, dataset description, the accuracy predictor's few megabytes) is small.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ofa_fleet.core.checkpoint import Checkpoint, TrainingFigures
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.core.supernet import OFASupernet
from ofa_fleet.data import DataSplits
from ofa_fleet.data.dataset import ImageDataset, Normalization
from ofa_fleet.predictors.accuracy import AccuracyPredictor

# A supernet trained on a streamed dataset (larger than memory) is searched with a seeded
# sample of it: enough images for BatchNorm calibration and a stable top-1 (a standard
# error of about 0.5 points), few enough for every worker to map from shared memory.
RESIDENT_IMAGES = 10_000


@dataclass(frozen=True)
class SupernetBundle:
    """A checkpoint's weights and metadata, its data splits and its accuracy predictor."""

    version: str
    space: dict[str, Any]
    model: dict[str, Any]
    dataset: dict[str, Any]
    state: dict[str, np.ndarray]
    splits: dict[str, Any]
    accuracy_predictor: bytes | None

    @classmethod
    def of(
        cls, checkpoint: Checkpoint, splits: DataSplits, accuracy: AccuracyPredictor | None
    ) -> SupernetBundle:
        """Without ``accuracy`` workers can measure subnets (to fit one) but not score."""
        supernet = checkpoint.supernet
        buffer = io.BytesIO()
        if accuracy is not None:
            accuracy.save_to(buffer)
        return cls(
            version=checkpoint.version,
            space=checkpoint.space.to_dict(),
            model={
                "in_channels": supernet.in_channels,
                "num_classes": supernet.num_classes,
                "dropout": supernet.dropout,
            },
            dataset=dict(checkpoint.dataset),
            state={k: v.detach().cpu().numpy() for k, v in supernet.state_dict().items()},
            splits={
                "train": _dataset_arrays(splits.train.resident(RESIDENT_IMAGES)),
                "val": _dataset_arrays(splits.val.resident(RESIDENT_IMAGES)),
                "classes": list(splits.train.classes),
                "mean": list(splits.normalization.mean),
                "std": list(splits.normalization.std),
                "name": splits.name,
                "image_size": splits.image_size,
                "flip": splits.flip,
            },
            accuracy_predictor=buffer.getvalue() if accuracy is not None else None,
        )

    def checkpoint(self) -> Checkpoint:
        """The supernet rebuilt (weights copied out of shared memory) as a `Checkpoint`."""
        space = SearchSpace.from_dict(self.space)
        supernet = OFASupernet(
            space, self.model["in_channels"], self.model["num_classes"], self.model["dropout"]
        )
        supernet.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.state.items()})
        return Checkpoint(
            supernet=supernet.eval(),
            dataset=dict(self.dataset),
            train_config={},
            progress={},
            figures=TrainingFigures(),
            version=self.version,
        )

    def data_splits(self) -> DataSplits:
        s = self.splits
        classes = tuple(s["classes"])
        return DataSplits(
            train=_dataset(s["train"], classes),
            val=_dataset(s["val"], classes),
            normalization=Normalization(tuple(s["mean"]), tuple(s["std"])),
            name=s["name"],
            image_size=s["image_size"],
            flip=s["flip"],
        )

    def accuracy(self) -> AccuracyPredictor | None:
        if self.accuracy_predictor is None:
            return None
        return AccuracyPredictor.load_from(io.BytesIO(self.accuracy_predictor), "bundle")


def _dataset_arrays(dataset: ImageDataset) -> dict[str, np.ndarray]:
    return {"images": dataset.images.numpy(), "labels": dataset.labels.numpy()}


def _dataset(arrays: dict[str, np.ndarray], classes: tuple[str, ...]) -> ImageDataset:
    return ImageDataset(
        torch.from_numpy(arrays["images"].copy()),
        torch.from_numpy(arrays["labels"].copy()),
        classes,
    )
