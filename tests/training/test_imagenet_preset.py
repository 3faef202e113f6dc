"""The `mobilenet-v3-imagenet` preset end to end on an ImageNet-layout folder of 224 px
JPEGs (`train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG`), streamed from disk: train, evaluate,
export. A handful of images: this checks the path, not the accuracy."""

from __future__ import annotations

import json

import pytest

from tests.cli_runner import ofa_fleet
from tests.training.test_streaming import write_folder

pytestmark = pytest.mark.slow


def test_the_imagenet_preset_trains_on_an_imagenet_layout_folder(tmp_path):
    data = write_folder(tmp_path / "imagenet", {"train": 4, "val": 2}, 2, 256, suffix=".JPEG")
    for label in range(2):  # ImageNet's class folders are WordNet ids
        for split in ("train", "val"):
            (data / split / f"class{label}").rename(data / split / f"n0144{label}763")
    ckpt = tmp_path / "supernet.ckpt"
    trained = json.loads(
        ofa_fleet(
            *("train", "--data", str(data), "--out", str(ckpt), "--space", "mobilenet-v3-imagenet"),
            *("--image-size", "224", "--data-loading", "stream", "--loader-workers", "1"),
            *("--batch-size", "4", "--epochs-per-phase", "1,1,0,0", "--device", "cpu", "--json"),
        ).stdout
    )
    assert trained["epochs"] == 2 and trained["images_seen"] == 2 * 8
    scored = json.loads(
        ofa_fleet("eval", "--checkpoint", str(ckpt), "--arch", "min", "--json").stdout
    )
    assert scored["arch"].startswith("r160")  # the smallest of 160..224
    onnx_path = tmp_path / "max.onnx"
    exported = json.loads(
        ofa_fleet("export", "--checkpoint", str(ckpt), "--out", str(onnx_path), "--json").stdout
    )
    assert exported["arch"].startswith("r224")
    import onnx

    model = onnx.load(str(onnx_path))
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert shape[1:] == [3, 224, 224]
