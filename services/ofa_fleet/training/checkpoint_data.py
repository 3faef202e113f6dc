"""The data a checkpoint was trained on, reloaded with the same split.

Evaluation must use the held-out split of training, never training images, so the split
is rebuilt from the checkpoint's own record (dataset, image size, seed) rather than from
whatever a later command defaults to.
"""

from __future__ import annotations

from ofa_fleet.core.checkpoint import Checkpoint
from ofa_fleet.data import DataLoading, DataSplits, load_dataset
from ofa_fleet.errors import DataError

VAL_FRACTION = 0.2


def load_checkpoint_data(
    checkpoint: Checkpoint, spec: str | None = None, loading: DataLoading | None = None
) -> DataSplits:
    """Load ``spec`` (default: the checkpoint's own dataset) split as in training."""
    source = checkpoint.train_config.get("imported_from")
    if spec is None and source:
        raise DataError(
            f"this supernet was imported from {source.get('file', 'another file')} "
            f"({source.get('format', 'trained elsewhere')}) and has no dataset of its own: "
            "pass --data, an ImageFolder of its classes (or of yours after a fine-tune), "
            "or --no-recalibrate where the command takes it"
        )
    splits = load_dataset(
        spec or checkpoint.dataset["name"],
        image_size=int(checkpoint.dataset["image_size"]),
        val_fraction=VAL_FRACTION,
        seed=int(checkpoint.train_config.get("seed", 0)),
        loading=loading,
    )
    if tuple(splits.train.classes) != checkpoint.classes:
        raise DataError(
            f"data {spec!r} has classes {list(splits.train.classes)} but the checkpoint was "
            f"trained on {list(checkpoint.classes)}"
        )
    if splits.train.channels != checkpoint.supernet.in_channels:
        raise DataError(
            f"data {spec!r} has {splits.train.channels} channels; the checkpoint "
            f"expects {checkpoint.supernet.in_channels}"
        )
    return splits
