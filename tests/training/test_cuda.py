"""The CUDA paths, on a machine that has a GPU (skipped elsewhere; `bench/gpu_train.py`
exercises them with figures): bf16 autocast, checkpoints that cross between GPU and CPU."""

from __future__ import annotations

import pytest
import torch

from ofa_fleet.core.accelerator import resolve_accelerator
from ofa_fleet.core.checkpoint import load_checkpoint
from ofa_fleet.data import load_dataset
from ofa_fleet.training.config import TrainConfig
from ofa_fleet.training.trainer import ProgressiveTrainer
from tests.training.test_trainer import TINY as SPACE
from tests.training.test_trainer import StopAfter

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CONFIG = TrainConfig(epochs_per_phase=(1, 1, 1, 0), batch_size=64, random_subnets=1)


@pytest.fixture(scope="module")
def splits():
    return load_dataset("digits", image_size=16)


def test_autocast_runs_the_supernet_in_bf16_with_fp32_weights():
    cuda = resolve_accelerator("cuda")
    from ofa_fleet.core.arch import ArchConfig
    from ofa_fleet.core.supernet import OFASupernet

    net = OFASupernet(SPACE, 1, 10).to(cuda.device)
    with cuda.autocast():
        logits = net(torch.randn(8, 1, 16, 16, device=cuda.device), ArchConfig.max(SPACE))
    assert logits.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in net.parameters())


@pytest.mark.parametrize(("first", "then"), [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_checkpoint_resumes_on_the_other_device(splits, tmp_path, first, then):
    path = tmp_path / "s.ckpt"
    with pytest.raises(KeyboardInterrupt):
        ProgressiveTrainer(
            splits, path, CONFIG, SPACE, StopAfter(1), accelerator=resolve_accelerator(first)
        ).run()
    partial = load_checkpoint(path)
    assert all(t.device.type == "cpu" for t in partial.supernet.state_dict().values())
    result = ProgressiveTrainer.resume(splits, path, accelerator=resolve_accelerator(then)).run()
    finished = load_checkpoint(path)
    assert finished.finished and finished.figures.epochs == 3
    assert result.version == finished.version
    assert finished.figures.history[-1]["val_top1_largest"] > 0.3
