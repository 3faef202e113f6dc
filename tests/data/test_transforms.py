"""normalize, resize and the load-time uint8 resize."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ofa_fleet.data import Normalization, normalize, resize
from ofa_fleet.data.transforms import resize_uint8
from ofa_fleet.errors import InvalidArgumentError


def test_normalize_computes_per_channel_standard_scores() -> None:
    images = torch.tensor([0, 51, 255, 128], dtype=torch.uint8).reshape(1, 2, 1, 2)
    norm = Normalization(mean=(0.5, 0.25), std=(0.5, 0.125))
    out = normalize(images, norm)
    expected = torch.tensor([[-1.0, -0.6], [6.0, (128 / 255 - 0.25) / 0.125]])
    assert out.dtype == torch.float32
    assert torch.allclose(out.reshape(2, 2), expected, atol=1e-5)


def test_normalize_rejects_a_channel_mismatch_and_float_input() -> None:
    norm = Normalization((0.5,), (0.2,))
    with pytest.raises(InvalidArgumentError, match="3 channels"):
        normalize(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), norm)
    with pytest.raises(InvalidArgumentError, match="uint8"):
        normalize(torch.zeros(1, 1, 2, 2), norm)


def test_resize_matches_bilinear_interpolation() -> None:
    batch = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = resize(batch, 12)
    assert out.shape == (2, 3, 12, 12)
    expected = F.interpolate(batch, size=(12, 12), mode="bilinear", align_corners=False)
    assert torch.allclose(out, expected)
    assert resize(batch, 4).shape == (2, 3, 4, 4)


def test_resize_returns_the_input_at_its_own_size() -> None:
    batch = torch.randn(1, 1, 5, 5)
    assert resize(batch, 5) is batch


@pytest.mark.parametrize("resolution", [0, -3, 2.5])
def test_resize_rejects_bad_resolutions(resolution: int) -> None:
    with pytest.raises(InvalidArgumentError, match="resolution"):
        resize(torch.zeros(1, 1, 4, 4), resolution)


def test_resize_uint8_keeps_constant_images_constant_and_chunks_correctly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    images = torch.arange(5, dtype=torch.uint8).mul(50).reshape(5, 1, 1, 1).expand(5, 1, 6, 6)
    monkeypatch.setattr("ofa_fleet.data.transforms.RESIZE_CHUNK", 2)
    for size in (3, 9):
        out = resize_uint8(images, size)
        assert out.dtype == torch.uint8 and out.shape == (5, 1, size, size)
        assert torch.equal(out, images[:, :, :1, :1].expand(5, 1, size, size))
