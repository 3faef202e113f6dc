"""Where tensors compute: the torch device a command trains or evaluates on, and how.

One value, chosen once from ``--device`` and passed down, so training, evaluation,
BatchNorm recalibration and the scratch reference agree. On CUDA the work runs under
bf16 autocast (weights, gradients and optimizer state stay fp32: autocast only lowers
the matmuls and convolutions), in channels-last layout, with cuDNN's autotuner on: elastic
training visits a handful of shapes (resolutions x kernel sizes x widths) over and over,
exactly the pattern its per-shape cache pays off for. On the CPU nothing changes, so a
CPU run stays bit-for-bit what it was.

``torch.compile`` is not used: the elastic supernet changes shapes and control flow with
every sampled subnet, and compiling it has not been measured faster (see README).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ofa_fleet.errors import InvalidArgumentError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_CUDA = re.compile(r"cuda(?::(\d{1,3}))?")


@dataclass(frozen=True)
class Accelerator:
    """A torch device and the precision policy that goes with it."""

    device: torch.device

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def name(self) -> str:
        """What a person reads in a summary: ``cpu`` or ``cuda:0 (NVIDIA H200)``."""
        if not self.is_cuda:
            return "cpu"
        return f"{self.device} ({torch.cuda.get_device_name(self.device)})"

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """bf16 autocast on CUDA (no loss scaling needed: bf16 has fp32's exponent range)."""
        if self.is_cuda:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def put(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` on this device; a no-op on the CPU, asynchronous from pinned memory."""
        if not self.is_cuda:
            return tensor
        return tensor.to(self.device, non_blocking=True)

    @contextlib.contextmanager
    def selected(self) -> Iterator[None]:
        """Make this the current CUDA device for the block (NCCL and cuDNN follow it)."""
        if not self.is_cuda:
            yield
            return
        with torch.cuda.device(self.device):
            yield


CPU = Accelerator(torch.device("cpu"))


def resolve_accelerator(text: str = "auto") -> Accelerator:
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``; a clear error when
    CUDA is asked for and this machine or this torch build has none."""
    text = (text or "auto").strip().lower()
    if text == "cpu":
        return CPU
    if text == "auto":
        return _cuda(0) if torch.cuda.is_available() else CPU
    match = _CUDA.fullmatch(text)
    if match is None:
        raise InvalidArgumentError(f"--device must be {DEVICE_CHOICES}, got {text!r}")
    if not torch.cuda.is_available():
        build = torch.version.cuda
        why = (
            f"this torch ({torch.__version__}) was built without CUDA"
            if build is None
            else f"torch {torch.__version__} (CUDA {build}) sees no GPU: check the driver "
            "and CUDA_VISIBLE_DEVICES"
        )
        raise InvalidArgumentError(f"--device {text}: {why}; use --device cpu")
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise InvalidArgumentError(
            f"--device {text}: only {count} GPU(s) visible (cuda:0..cuda:{count - 1})"
        )
    return _cuda(index)


def accelerator_for(device: torch.device) -> Accelerator:
    """The accelerator of a device someone else chose (Ray Train's, for one rank)."""
    if device.type == "cuda":
        return _cuda(device.index or 0)
    return CPU


def _cuda(index: int) -> Accelerator:
    # A process-wide switch, set where CUDA is chosen: elastic training revisits a small
    # set of shapes, exactly what cuDNN's per-shape kernel timing pays off for.
    torch.backends.cudnn.benchmark = True
    return Accelerator(torch.device("cuda", index))
