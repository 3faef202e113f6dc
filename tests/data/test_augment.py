"""Random crop and flip: determinism, shape, and that every output is a real crop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ofa_fleet.data import augment
from ofa_fleet.errors import InvalidArgumentError


def _images(count: int = 32, channels: int = 3, size: int = 8) -> torch.Tensor:
    generator = torch.Generator().manual_seed(123)
    return torch.randint(0, 256, (count, channels, size, size), generator=generator).to(torch.uint8)


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _placement(image: torch.Tensor, out: torch.Tensor, pad: int) -> tuple[int, int, bool]:
    """The (dy, dx, mirrored) that turns ``image`` into ``out``; fails if there is none."""
    padded = F.pad(image, (pad, pad, pad, pad))
    height, width = image.shape[-2:]
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy : dy + height, dx : dx + width]
            for mirrored in (False, True):
                if torch.equal(crop.flip(-1) if mirrored else crop, out):
                    return dy, dx, mirrored
    raise AssertionError("output is not a crop of the zero-padded input")


def test_augment_preserves_shape_and_dtype() -> None:
    images = _images(channels=1, size=10)
    out = augment(images, _seeded(0), flip=True)
    assert out.shape == images.shape and out.dtype == torch.uint8 and out.is_contiguous()


def test_augment_is_deterministic_by_generator_seed() -> None:
    images = _images()
    first = augment(images, _seeded(7), flip=True)
    assert torch.equal(first, augment(images, _seeded(7), flip=True))
    assert not torch.equal(first, augment(images, _seeded(8), flip=True))


def test_every_output_is_a_crop_of_the_padded_input_at_varied_offsets() -> None:
    images = _images(count=64)
    out = augment(images, _seeded(1), pad=2, flip=True)
    placements = [_placement(images[i], out[i], pad=2) for i in range(len(images))]
    offsets = {(dy, dx) for dy, dx, _ in placements}
    assert len(offsets) > 10  # 25 possible: crops really move
    assert any(dy != 2 or dx != 2 for dy, dx in offsets)
    flipped = sum(mirrored for *_, mirrored in placements)
    assert 10 < flipped < 54


def test_no_flip_means_no_mirrored_output() -> None:
    images = _images(count=64)
    out = augment(images, _seeded(2), pad=2, flip=False)
    assert not any(_placement(images[i], out[i], pad=2)[2] for i in range(len(images)))


def test_zero_pad_without_flip_is_the_identity() -> None:
    images = _images()
    assert torch.equal(augment(images, _seeded(3), pad=0, flip=False), images)


def test_augment_rejects_bad_inputs() -> None:
    with pytest.raises(InvalidArgumentError, match="uint8"):
        augment(torch.zeros(2, 3, 4, 4), _seeded(0), flip=True)
    with pytest.raises(InvalidArgumentError, match="pad"):
        augment(_images(), _seeded(0), pad=-1, flip=True)
