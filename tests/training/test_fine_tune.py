"""`train --init`: MIT's once-for-all supernet, imported, fine-tuned on a folder of a
user's own classes at 224 px; its subnets then serve those classes. A handful of images:
this checks the path and what is taken over, not the accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ofa_fleet.core.checkpoint import load_checkpoint
from ofa_fleet.core.ofa_import import import_ofa_mobilenet_v3, save_imported
from tests.cli_runner import ofa_fleet
from tests.core.ofa_reference import reference_network
from tests.training.test_streaming import write_folder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("imported")
    state = reference_network(1.0, seed=0).state_dict()
    source = folder / "ofa_mbv3_d234_e346_k357_w1.0"
    torch.save(state, source)
    path = folder / "imported.ckpt"
    save_imported(import_ofa_mobilenet_v3(state), path, source, "0" * 64)
    return path


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def test_a_fine_tune_keeps_the_features_and_serves_the_new_classes(
    imported: Path, tmp_path: Path
) -> None:
    data = write_folder(tmp_path / "mine", {"train": 4, "val": 2}, 2, 96)
    out = tmp_path / "fine-tuned.ckpt"
    trained = json.loads(
        ofa_fleet(
            *("train", "--init", str(imported), "--data", str(data), "--out", str(out)),
            *("--batch-size", "4", "--epochs-per-phase", "1,1,0,0", "--device", "cpu", "--json"),
        ).stdout
    )
    assert trained["epochs"] == 2
    start, tuned = load_checkpoint(imported), load_checkpoint(out)
    assert tuned.classes == ("class0", "class1") and tuned.dataset["image_size"] == 224
    assert tuned.space.fingerprint == start.space.fingerprint
    assert start.version in tuned.train_config["init_from"]
    assert "imported from ofa_mbv3_d234_e346_k357_w1.0" in tuned.train_config["init_from"]
    before, after = start.supernet.state_dict(), tuned.supernet.state_dict()
    assert after["head.classifier.weight"].shape == (2, before["head.classifier.weight"].shape[1])
    # Taken over and adapted, not trained from random weights: still close to the start.
    for key in ("stem.conv.weight", "stages.2.blocks.1.depthwise.weight", "head.expand.weight"):
        assert _cosine(before[key], after[key]) > 0.9, key
    # Any subnet serves the new classes, with statistics of its own from the new data.
    model = tmp_path / "min.onnx"
    exported = json.loads(
        ofa_fleet(
            "export", "--checkpoint", str(out), "--arch", "min", "--out", str(model), "--json"
        ).stdout
    )
    assert exported["arch"].startswith("r160")
    import onnx

    graph = onnx.load(str(model)).graph
    assert graph.output[0].type.tensor_type.shape.dim[1].dim_value == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--space", "cpu"], "neither --resume nor --space"),
        (["--data", "digits"], "1 channel(s)"),
    ],
    ids=["another space", "one-channel data"],
)
def test_a_fine_tune_refuses_what_does_not_fit(
    imported: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    result = ofa_fleet(
        "train", "--init", str(imported), "--out", str(tmp_path / "x.ckpt"), *extra, check=False
    )
    assert result.returncode != 0 and message in result.stderr
    assert not (tmp_path / "x.ckpt").exists()
