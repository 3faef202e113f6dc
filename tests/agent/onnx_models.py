"""Small real ONNX models for the agent's tests, so its smoke inference is a real one.

Exported from torch with the TorchScript exporter (`dynamo=False`, as the project's own
export does), with a symbolic batch dimension, as search's models have.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

INPUT_SHAPE = (1, 3, 16, 16)


class TinyNet(nn.Module):
    """Two convolutions and a classifier: about 40 KB of weights, ten 4 KiB chunks."""

    def __init__(self, broken: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU()
        )
        self.classifier = nn.Linear(32, 10)
        self.broken = broken

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.features(x).mean(dim=(2, 3)))
        if self.broken:  # divides by the input's sum: on zeros, non-finite logits
            logits = logits / x.sum()
        return logits


def tiny_onnx(seed: int, broken: bool = False) -> bytes:
    """The ONNX bytes of a `TinyNet` initialised from `seed` (another seed, other bytes)."""
    torch.manual_seed(seed)
    net = TinyNet(broken).eval()
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the tracing exporter, on purpose
        _export(net, buffer)
    return buffer.getvalue()


def _export(net: nn.Module, buffer: io.BytesIO) -> None:
    torch.onnx.export(
        net,
        (torch.zeros(INPUT_SHAPE),),
        buffer,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
