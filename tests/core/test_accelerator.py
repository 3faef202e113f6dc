"""Choosing the device: what auto means, clear errors for a GPU that is not there, and a
CPU path that computes exactly as before (no autocast, no copies)."""

from __future__ import annotations

import pytest
import torch

from ofa_fleet.cli.core_main import main as core_main
from ofa_fleet.core.accelerator import CPU, accelerator_for, resolve_accelerator
from ofa_fleet.errors import InvalidArgumentError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def test_cpu_is_the_cpu_whatever_the_machine():
    assert resolve_accelerator("cpu") == CPU == resolve_accelerator(" CPU ")
    assert not CPU.is_cuda and CPU.name == "cpu"
    assert accelerator_for(torch.device("cpu")) == CPU


@no_cuda
def test_auto_is_the_cpu_without_cuda():
    assert resolve_accelerator("auto") == CPU == resolve_accelerator("")


@no_cuda
@pytest.mark.parametrize("text", ["cuda", "cuda:0", "CUDA:1"])
def test_asking_for_cuda_without_it_says_why(text):
    with pytest.raises(InvalidArgumentError, match=r"--device cuda.*(without CUDA|no GPU)"):
        resolve_accelerator(text)


@pytest.mark.parametrize("text", ["gpu", "cuda:x", "cuda:-1", "cuda:1000", "mps", "cpu:0"])
def test_other_devices_are_refused_with_the_choices(text):
    with pytest.raises(InvalidArgumentError, match="auto, cpu, cuda or cuda:N"):
        resolve_accelerator(text)


def test_the_cpu_path_adds_nothing():
    x = torch.randn(4, 4)
    assert CPU.put(x) is x
    with CPU.autocast():
        assert (x @ x).dtype == torch.float32


@no_cuda
def test_the_command_line_refuses_a_missing_gpu_in_one_line(tmp_path, capsys):
    code = core_main(["train", "--out", str(tmp_path / "s.ckpt"), "--device", "cuda"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --device cuda:") and "\n" not in err
    assert not (tmp_path / "s.ckpt").exists()
