"""MIT's once-for-all supernets imported: output for output against the `ofa` package's
own subnets, through the CLI to an ONNX model, and every file that is not one refused."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ofa_fleet.core.checkpoint import load_checkpoint
from ofa_fleet.core.ofa_import import IMAGENET_NORMALIZATION, import_ofa_mobilenet_v3
from ofa_fleet.errors import CheckpointError
from ofa_fleet.subnet import materialize
from tests.cli_runner import ofa_fleet
from tests.core.ofa_reference import (
    largest_arch,
    random_arch,
    reference_logits,
    reference_network,
)

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference() -> object:
    return reference_network(1.0, seed=0)


def _ours(supernet, arch, x: torch.Tensor) -> torch.Tensor:
    subnet = materialize(supernet, arch, None)  # the stored statistics: --no-recalibrate
    with torch.no_grad():
        return subnet.net(x.contiguous(memory_format=torch.channels_last))


@pytest.mark.parametrize("width", [1.0, 1.2])
def test_subnets_give_the_logits_of_ofa_s_own_subnets(reference, width: float) -> None:
    network = reference if width == 1.0 else reference_network(width, seed=1)
    imported = import_ofa_mobilenet_v3(network.state_dict(), width)
    assert imported.width_mult == width and imported.num_classes == 1000
    space = imported.supernet.space
    rng = random.Random(3)
    cases = [largest_arch(space)] + [
        random_arch(space, rng) for _ in range(4 if width == 1.0 else 1)
    ]
    for arch, choice in cases:
        x = torch.randn(2, 3, arch.resolution, arch.resolution)
        expected = reference_logits(network, choice, x)
        assert expected.abs().max() > 1.0  # a scale at which 1e-4 is tight
        worst = (_ours(imported.supernet, arch, x) - expected).abs().max().item()
        assert worst <= TOLERANCE, (str(arch), worst)
        # The supernet itself runs the same subnet without extracting it.
        with torch.no_grad():
            direct = imported.supernet(x, arch)
        assert (direct - expected).abs().max().item() <= TOLERANCE


def test_import_and_export_through_the_cli(reference, tmp_path: Path) -> None:
    source = tmp_path / "ofa_mbv3_d234_e346_k357_w1.0"
    torch.save({"state_dict": reference.state_dict(), "epoch": 180}, source)
    checkpoint = tmp_path / "imported.ckpt"
    answer = json.loads(
        ofa_fleet(
            "supernet", "import", "--from-ofa", str(source), "--out", str(checkpoint),
            "--width", "1.0", "--json",
        ).stdout
    )  # fmt: skip
    assert answer["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert answer["resolutions"] == [160, 176, 192, 208, 224]
    loaded = load_checkpoint(checkpoint)
    assert loaded.version == answer["supernet_version"] and loaded.finished
    assert loaded.train_config["imported_from"]["sha256"] == answer["source_sha256"]
    assert loaded.dataset["normalization"] == IMAGENET_NORMALIZATION
    model = tmp_path / "min.onnx"
    ofa_fleet(
        "export", "--checkpoint", str(checkpoint), "--arch", "min", "--no-recalibrate",
        "--out", str(model),
    )  # fmt: skip
    # "min": the smallest kernel, expand ratio and depth everywhere, at 160 px.
    choice = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5}
    x = torch.randn(1, 3, 160, 160)
    expected = reference_logits(reference, choice, x).numpy()
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert np.abs(got - expected).max() <= TOLERANCE
    # Statistics of its own need images, which an imported supernet does not come with.
    refused = ofa_fleet(
        "export", "--checkpoint", str(checkpoint), "--arch", "min", "--out", str(model),
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "has no dataset of its own" in refused.stderr
    # Replacing a checkpoint takes --force.
    again = ofa_fleet(
        "supernet", "import", "--from-ofa", str(source), "--out", str(checkpoint), check=False
    )
    assert again.returncode != 0 and "--force" in again.stderr


def _without(state: dict[str, torch.Tensor], key: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k != key}


def test_what_does_not_map_is_refused_by_name(reference) -> None:
    state = dict(reference.state_dict())
    key = "blocks.7.conv.depth_conv.conv.7to5_matrix"
    with pytest.raises(CheckpointError, match=f"lacks 1 tensor.*{key}"):
        import_ofa_mobilenet_v3(_without(state, key))
    with pytest.raises(CheckpointError, match=r"no place for.*'blocks\.21\.conv\.extra'"):
        import_ofa_mobilenet_v3({**state, "blocks.21.conv.extra": torch.zeros(1)})
    bad = {**state, "blocks.3.conv.point_linear.bn.bn.weight": torch.zeros(5)}
    with pytest.raises(
        CheckpointError, match=r"'blocks\.3\.conv\.point_linear\.bn\.bn\.weight' has shape"
    ):
        import_ofa_mobilenet_v3(bad)
    with pytest.raises(CheckpointError, match=r"width 1\.0, not 1\.2"):
        import_ofa_mobilenet_v3(state, 1.2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"input_stem.0.conv.weight": torch.zeros(1)}, "OFAResNets"),
        (
            {
                "first_conv.conv.weight": torch.zeros(1),
                "feature_mix_layer.conv.weight": torch.zeros(1),
            },
            "OFAProxylessNASNets",
        ),
        ({"conv1.weight": torch.zeros(1)}, "not OFA's OFAMobileNetV3"),
        ([torch.zeros(1)], "not a PyTorch state dict"),
    ],
    ids=["resnet", "proxyless", "another network", "a list"],
)
def test_files_of_another_kind_are_refused_with_what_they_are(
    tmp_path: Path, content: object, message: str
) -> None:
    source = tmp_path / "some.pth"
    torch.save(content, source)
    result = ofa_fleet(
        "supernet", "import", "--from-ofa", str(source), "--out", str(tmp_path / "c"), check=False
    )
    assert result.returncode != 0 and message in result.stderr
    assert not (tmp_path / "c").exists()
    assert "Traceback" not in result.stderr


def test_a_file_that_is_not_torch_s_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "profile.yaml"
    source.write_text("name: pi\n")
    result = ofa_fleet(
        "supernet", "import", "--from-ofa", str(source), "--out", str(tmp_path / "c"), check=False
    )
    assert result.returncode != 0 and "not a PyTorch file" in result.stderr
