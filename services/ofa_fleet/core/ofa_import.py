"""MIT's published once-for-all MobileNetV3 supernets, as our supernet.

The `ofa` package's `OFAMobileNetV3` (its `ofa_mbv3_d234_e346_k357_w1.0` and `w1.2`
checkpoints, trained on ImageNet) is the same network as ours in the
`mobilenet-v3-imagenet` space, part for part: the same blocks in the same order, channels
rounded the same way, the same kernel transformation and BatchNorm statistics. Only the
names differ, and one detail: OFA applies a kernel-transform matrix as ``F.linear``
(``x @ M.T``) where ours multiplies on the right (``x @ M``), so each matrix is stored
transposed.

Importing is strict. Every tensor of the file must land somewhere and every tensor of the
supernet must come from the file, with the shape it expects; anything else names the key,
because a half-imported supernet would serve subnets that are wrong without saying so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ofa_fleet.core.checkpoint import TrainingFigures, first_line, save_checkpoint
from ofa_fleet.core.space import SearchSpace, mobilenet_v3_imagenet_space
from ofa_fleet.core.supernet import OFASupernet
from ofa_fleet.errors import CheckpointError, InvalidArgumentError

# What OFA trained on: ImageNet at 224 px, normalised with ImageNet's mean and std.
IMAGENET_NORMALIZATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
IMAGENET_IMAGE_SIZE = 224
SOURCE_FORMAT = "once-for-all OFAMobileNetV3"

# Widths OFA published supernets in: first_conv's output channels tell them apart.
WIDTHS = {16: 1.0, 24: 1.2}
BN_FIELDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class ImportedSupernet:
    """Our supernet with OFA's weights, and what it was made from."""

    supernet: OFASupernet
    width_mult: float
    num_classes: int


def import_ofa_mobilenet_v3(
    state: Mapping[str, torch.Tensor], width_mult: float | None = None
) -> ImportedSupernet:
    """Our supernet holding ``state``, the state dict of OFA's `OFAMobileNetV3`.

    ``width_mult``: the width the file must have (None: whichever it has). Raises
    `CheckpointError` for a file of another kind or width, or a key that does not map.
    """
    _check_kind(state)
    found = WIDTHS.get(int(state["first_conv.conv.weight"].shape[0]))
    if found is None:
        raise CheckpointError(
            f"the file's first convolution has {state['first_conv.conv.weight'].shape[0]} "
            f"channels; OFA's MobileNetV3 supernets have {sorted(WIDTHS)} (widths "
            f"{sorted(WIDTHS.values())})"
        )
    if width_mult is not None and width_mult != found:
        raise CheckpointError(
            f"the file holds OFA's MobileNetV3 at width {found}, not {width_mult}; pass "
            f"--width {found}, or the file of the width you meant"
        )
    num_classes = int(state["classifier.linear.weight"].shape[0])
    space = mobilenet_v3_imagenet_space(found)
    supernet = OFASupernet(space, in_channels=3, num_classes=num_classes, dropout=0.0)
    ours = supernet.state_dict()
    sources = _sources(space)
    missing = sorted(sources[key] for key in ours if sources[key] not in state)
    if missing:
        raise CheckpointError(
            f"the file lacks {len(missing)} tensor(s) OFA's MobileNetV3 has, first "
            f"{missing[0]!r}: a truncated or modified state dict"
        )
    unused = sorted(set(state) - set(sources.values()))
    if unused:
        raise CheckpointError(
            f"the file has {len(unused)} tensor(s) our supernet has no place for, first "
            f"{unused[0]!r}: a supernet with other depths, expand ratios or kernel sizes "
            f"than {space.depths}, {space.expand_ratios}, {space.kernel_sizes}?"
        )
    loaded = {}
    for key, target in ours.items():
        source = sources[key]
        value = state[source]
        if _TRANSFORM.search(key):
            value = value.t()
        if tuple(value.shape) != tuple(target.shape):
            raise CheckpointError(
                f"{source!r} has shape {tuple(state[source].shape)}; our {key!r} needs "
                f"{tuple(target.shape)}"
            )
        loaded[key] = value.detach().to(target.dtype).contiguous().clone()
    supernet.load_state_dict(loaded)
    return ImportedSupernet(supernet.eval(), found, num_classes)


def state_dict_of(loaded: object) -> Mapping[str, torch.Tensor]:
    """The state dict in what ``torch.load`` read: OFA saves it plain or under
    ``state_dict`` (the training checkpoints, beside the optimizer's)."""
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise CheckpointError(
            "the file is not a PyTorch state dict (tensors by name, plain or under "
            f"'state_dict'); it holds a {type(loaded).__name__}"
        )
    # Saved from nn.DataParallel, every key starts with "module.".
    if loaded and all(k.startswith("module.") for k in loaded):
        return {k.removeprefix("module."): v for k, v in loaded.items()}
    return loaded


def read_ofa_file(path: Path) -> tuple[Mapping[str, torch.Tensor], str]:
    """The state dict in an OFA ``.pth`` file, and the file's sha256 (its provenance)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    data = path.read_bytes()
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path} is not a PyTorch file torch can read: {first_line(exc)}"
        ) from None
    return state_dict_of(loaded), hashlib.sha256(data).hexdigest()


def save_imported(
    imported: ImportedSupernet,
    out: Path,
    source: Path,
    source_sha256: str,
    classes: Sequence[str] | None = None,
) -> str:
    """Write our checkpoint of an imported supernet; returns its supernet version.

    ``classes``: the classifier's class names, in its order (default: ``class-0000``...).
    The dataset recorded is ImageNet's shape and normalisation, which the weights expect;
    there are no images to reload, so recalibrating or evaluating takes ``--data``.
    """
    names = (
        list(classes)
        if classes is not None
        else [f"class-{index:04d}" for index in range(imported.num_classes)]
    )
    if len(names) != imported.num_classes:
        raise InvalidArgumentError(
            f"{len(names)} class names given for a classifier of {imported.num_classes} classes"
        )
    return save_checkpoint(
        Path(out),
        imported.supernet,
        dataset={
            "name": "imagenet",
            "classes": names,
            "image_size": IMAGENET_IMAGE_SIZE,
            "channels": 3,
            "normalization": dict(IMAGENET_NORMALIZATION),
            "train_images": 0,
            "val_images": 0,
        },
        train_config={
            "imported_from": {
                "format": SOURCE_FORMAT,
                "file": Path(source).name,
                "sha256": source_sha256,
                "width_mult": imported.width_mult,
            },
        },
        progress={"phase": 0, "epoch": 0, "finished": 1},
        figures=TrainingFigures(),
        teacher_state=None,
        optimizer_state=None,
    )


_TRANSFORM = re.compile(r"depthwise\.transforms\.\d+$")


def _check_kind(state: Mapping[str, torch.Tensor]) -> None:
    """Say what a file of OFA's other supernets is, rather than which key is missing."""
    kind = None
    if any(key.startswith("input_stem.") for key in state):
        kind = "OFAResNets (a ResNet supernet)"
    elif "first_conv.conv.weight" in state and "final_expand_layer.conv.weight" not in state:
        kind = "OFAProxylessNASNets (no final expand layer)"
    if kind is not None:
        raise CheckpointError(f"the file holds OFA's {kind}, not its OFAMobileNetV3")
    if "first_conv.conv.weight" not in state or "classifier.linear.weight" not in state:
        some = ", ".join(sorted(state)[:3]) or "no tensors"
        raise CheckpointError(
            f"the file is not OFA's OFAMobileNetV3 (it has no first_conv or classifier; its "
            f"first keys: {some})"
        )


def _sources(space: SearchSpace) -> dict[str, str]:
    """Our state dict's keys, each with the key of OFA's that holds its value."""
    sources: dict[str, str] = {}

    def bn(ours: str, theirs: str) -> None:
        for name in BN_FIELDS:
            sources[f"{ours}.{name}"] = f"{theirs}.{name}"

    sources["stem.conv.weight"] = "first_conv.conv.weight"
    bn("stem.bn", "first_conv.bn")
    sources["first_block.depthwise.weight"] = "blocks.0.conv.depth_conv.conv.weight"
    bn("first_block.depthwise_bn", "blocks.0.conv.depth_conv.bn")
    sources["first_block.project.weight"] = "blocks.0.conv.point_linear.conv.weight"
    bn("first_block.project_bn", "blocks.0.conv.point_linear.bn")
    kernels = space.kernel_sizes
    for stage_index, stage in enumerate(space.stages):
        for block in range(space.max_depth):
            ours = f"stages.{stage_index}.blocks.{block}"
            theirs = f"blocks.{1 + stage_index * space.max_depth + block}.conv"
            sources[f"{ours}.expand.weight"] = f"{theirs}.inverted_bottleneck.conv.conv.weight"
            bn(f"{ours}.expand_bn.bn", f"{theirs}.inverted_bottleneck.bn.bn")
            sources[f"{ours}.depthwise.weight"] = f"{theirs}.depth_conv.conv.conv.weight"
            for index, small in enumerate(kernels[:-1]):
                matrix = f"{kernels[index + 1]}to{small}_matrix"
                sources[f"{ours}.depthwise.transforms.{index}"] = (
                    f"{theirs}.depth_conv.conv.{matrix}"
                )
            bn(f"{ours}.depthwise_bn.bn", f"{theirs}.depth_conv.bn.bn")
            if stage.use_se:
                for part in ("reduce", "expand"):
                    for name in ("weight", "bias"):
                        sources[f"{ours}.se.{part}.{name}"] = (
                            f"{theirs}.depth_conv.se.fc.{part}.{name}"
                        )
            sources[f"{ours}.project.weight"] = f"{theirs}.point_linear.conv.conv.weight"
            bn(f"{ours}.project_bn.bn", f"{theirs}.point_linear.bn.bn")
    sources["head.expand.weight"] = "final_expand_layer.conv.weight"
    bn("head.expand_bn", "final_expand_layer.bn")
    sources["head.feature_mix.weight"] = "feature_mix_layer.conv.weight"
    sources["head.classifier.weight"] = "classifier.linear.weight"
    sources["head.classifier.bias"] = "classifier.linear.bias"
    return sources
