"""`ArchConfig`: one subnet of the search space, as an immutable value.

A subnet is a value, not a mode: it flows from search to registry to delivery to the
ONNX metadata, and every consumer (supernet forward, extraction, predictors) takes it as
an argument. Its canonical string is the cache key and the log field, so only *active*
blocks are part of it: two configs that differ only in blocks a shallow stage skips are
the same subnet.

Canonical grammar (stages separated by ``_``, blocks within a stage by ``-``)::

    r32_k7e6-k5e4_k3e3-k3e3-k5e6_k7e4-k7e4_k3e6-k3e3

reads: input resolution 32; stage 1 has two blocks (kernel 7 expand 6, kernel 5 expand
4); stage 2 has three blocks; and so on.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ofa_fleet.core.space import SearchSpace
from ofa_fleet.errors import InvalidArchError

_BLOCK_RE = re.compile(r"^k(\d+)e(\d+)$")
_RES_RE = re.compile(r"^r(\d+)$")


@dataclass(frozen=True, order=True)
class BlockChoice:
    """Kernel size and expand ratio of one active inverted-residual block."""

    kernel: int
    expand: int

    def __str__(self) -> str:
        return f"k{self.kernel}e{self.expand}"


@dataclass(frozen=True)
class ArchConfig:
    """A subnet: input resolution plus the active blocks of every stage.

    Attributes:
        resolution: input height and width in pixels.
        stages: per stage, the active blocks in order; its length is the stage's depth.
    """

    resolution: int
    stages: tuple[tuple[BlockChoice, ...], ...]

    def __post_init__(self) -> None:
        stages = tuple(tuple(stage) for stage in self.stages)
        object.__setattr__(self, "stages", stages)
        if not stages or any(len(stage) == 0 for stage in stages):
            raise InvalidArchError("every stage needs at least one block")

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(stage) for stage in self.stages)

    @property
    def blocks(self) -> tuple[BlockChoice, ...]:
        return tuple(block for stage in self.stages for block in stage)

    def __str__(self) -> str:
        return self._canonical

    @functools.cached_property
    def _canonical(self) -> str:
        """Built once per value: a search keys every candidate by it, tens of thousands of
        times, and building it each time was half of the evolution's own time."""
        stages = "_".join("-".join(str(b) for b in stage) for stage in self.stages)
        return f"r{self.resolution}_{stages}"

    @classmethod
    def parse(cls, text: str, space: SearchSpace | None = None) -> ArchConfig:
        """Parse the canonical string; with ``space``, also check it belongs to that space."""
        parts = text.strip().split("_")
        res_match = _RES_RE.match(parts[0]) if parts else None
        if res_match is None or len(parts) < 2:
            raise InvalidArchError(
                f"cannot parse arch {text!r}: expected 'r<resolution>_<stage>_<stage>...', "
                "each stage 'k<kernel>e<expand>' blocks joined by '-', "
                "e.g. 'r32_k3e3-k5e4_k7e6-k3e3'"
            )
        stages = []
        for index, stage_text in enumerate(parts[1:], start=1):
            blocks = []
            for block_text in stage_text.split("-"):
                block = _parse_block(block_text)
                if block is None:
                    raise InvalidArchError(
                        f"cannot parse block {block_text!r} of stage {index} in arch {text!r}: "
                        "expected 'k<kernel>e<expand>', e.g. 'k5e4'"
                    )
                blocks.append(block)
            stages.append(tuple(blocks))
        arch = cls(int(res_match.group(1)), tuple(stages))
        if space is not None:
            validate(arch, space)
        return arch

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolution": self.resolution,
            "stages": [[{"kernel": b.kernel, "expand": b.expand} for b in s] for s in self.stages],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], space: SearchSpace | None = None) -> ArchConfig:
        try:
            arch = cls(
                int(data["resolution"]),
                tuple(
                    tuple(BlockChoice(int(b["kernel"]), int(b["expand"])) for b in stage)
                    for stage in data["stages"]
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArchError(
                f"arch JSON must be {{'resolution': int, 'stages': [[{{'kernel': int, "
                f"'expand': int}}, ...], ...]}}: {exc}"
            ) from exc
        if space is not None:
            validate(arch, space)
        return arch

    @classmethod
    def from_json(cls, text: str, space: SearchSpace | None = None) -> ArchConfig:
        return cls.from_dict(json.loads(text), space)

    def encode(self, space: SearchSpace) -> np.ndarray:
        """Fixed-length numeric encoding for predictors (one-hot per choice).

        Layout: for every block slot (stage x max depth) a one-hot kernel and a one-hot
        expand ratio, all zeros where the slot is inactive; then a one-hot depth per stage;
        then a one-hot resolution. Its length depends on the space only.
        """
        validate(self, space)
        k_count, e_count = len(space.kernel_sizes), len(space.expand_ratios)
        slot = k_count + e_count
        vector = np.zeros(encoding_length(space), dtype=np.float32)
        for s, stage in enumerate(self.stages):
            for b, block in enumerate(stage):
                base = (s * space.max_depth + b) * slot
                vector[base + space.kernel_sizes.index(block.kernel)] = 1.0
                vector[base + k_count + space.expand_ratios.index(block.expand)] = 1.0
        offset = space.num_stages * space.max_depth * slot
        for s, depth in enumerate(self.depths):
            vector[offset + s * len(space.depths) + space.depths.index(depth)] = 1.0
        offset += space.num_stages * len(space.depths)
        vector[offset + space.resolutions.index(self.resolution)] = 1.0
        return vector

    @classmethod
    def max(cls, space: SearchSpace) -> ArchConfig:
        """The largest subnet: every choice at its maximum."""
        block = BlockChoice(space.kernel_sizes[-1], space.expand_ratios[-1])
        return cls(space.resolutions[-1], ((block,) * space.depths[-1],) * space.num_stages)

    @classmethod
    def min(cls, space: SearchSpace) -> ArchConfig:
        """The smallest subnet: every choice at its minimum."""
        block = BlockChoice(space.kernel_sizes[0], space.expand_ratios[0])
        return cls(space.resolutions[0], ((block,) * space.depths[0],) * space.num_stages)

    @classmethod
    def sample(
        cls,
        space: SearchSpace,
        rng: random.Random,
        *,
        kernel_sizes: Sequence[int] | None = None,
        expand_ratios: Sequence[int] | None = None,
        depths: Sequence[int] | None = None,
        resolutions: Sequence[int] | None = None,
    ) -> ArchConfig:
        """A uniformly random subnet, optionally restricted to a subset of choices.

        The restrictions are how progressive shrinking opens the space phase by phase.
        """
        kernels = list(kernel_sizes or space.kernel_sizes)
        expands = list(expand_ratios or space.expand_ratios)
        depth_choices = list(depths or space.depths)
        resolution = rng.choice(list(resolutions or space.resolutions))
        stages = []
        for _ in range(space.num_stages):
            depth = rng.choice(depth_choices)
            stages.append(
                tuple(BlockChoice(rng.choice(kernels), rng.choice(expands)) for _ in range(depth))
            )
        return cls(resolution, tuple(stages))


@functools.lru_cache(maxsize=4096)
def _parse_block(text: str) -> BlockChoice | None:
    """Blocks repeat endlessly across archs (a space has a handful of kinds), and search
    workers parse thousands of archs a second: parse each spelling once."""
    match = _BLOCK_RE.match(text)
    return None if match is None else BlockChoice(int(match.group(1)), int(match.group(2)))


def encoding_length(space: SearchSpace) -> int:
    slot = len(space.kernel_sizes) + len(space.expand_ratios)
    return (
        space.num_stages * space.max_depth * slot
        + space.num_stages * len(space.depths)
        + len(space.resolutions)
    )


def validate(arch: ArchConfig, space: SearchSpace) -> None:
    """Raise `InvalidArchError` naming the first field outside the space."""
    if arch.resolution not in space.resolutions:
        raise InvalidArchError(
            f"resolution {arch.resolution} is not in the search space; "
            f"allowed: {list(space.resolutions)}"
        )
    if len(arch.stages) != space.num_stages:
        raise InvalidArchError(
            f"arch has {len(arch.stages)} stages; this search space has {space.num_stages}"
        )
    for s, stage in enumerate(arch.stages, start=1):
        if len(stage) not in space.depths:
            raise InvalidArchError(
                f"stage {s} depth {len(stage)} is not allowed; allowed: {list(space.depths)}"
            )
        for b, block in enumerate(stage, start=1):
            if block.kernel not in space.kernel_sizes:
                raise InvalidArchError(
                    f"stage {s} block {b} kernel {block.kernel} is not allowed; "
                    f"allowed: {list(space.kernel_sizes)}"
                )
            if block.expand not in space.expand_ratios:
                raise InvalidArchError(
                    f"stage {s} block {b} expand ratio {block.expand} is not allowed; "
                    f"allowed: {list(space.expand_ratios)}"
                )
