"""Progressive shrinking: the order in which the space opens up during training.

Training every subnet from the start lets small subnets drag the large ones down. OFA
trains the full network first, then opens kernel size, then depth, then width (expand
ratio), each phase fine-tuning the weights the larger subnets already share. Resolution
is elastic throughout.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ofa_fleet.core.arch import ArchConfig, BlockChoice
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.training.config import PHASE_NAMES, TrainConfig


@dataclass(frozen=True)
class Phase:
    """One phase: which choices are open, for how long, at which learning rate."""

    name: str
    epochs: int
    lr: float
    kernel_sizes: tuple[int, ...]
    expand_ratios: tuple[int, ...]
    depths: tuple[int, ...]
    sort_channels_first: bool
    distill: bool

    @property
    def elastic(self) -> bool:
        return self.name != "full"

    def largest(self, space: SearchSpace, resolution: int) -> ArchConfig:
        block = BlockChoice(self.kernel_sizes[-1], self.expand_ratios[-1])
        return ArchConfig(resolution, ((block,) * self.depths[-1],) * space.num_stages)

    def smallest(self, space: SearchSpace, resolution: int) -> ArchConfig:
        block = BlockChoice(self.kernel_sizes[0], self.expand_ratios[0])
        return ArchConfig(resolution, ((block,) * self.depths[0],) * space.num_stages)

    def sample(self, space: SearchSpace, rng: random.Random, resolution: int) -> ArchConfig:
        return ArchConfig.sample(
            space,
            rng,
            kernel_sizes=self.kernel_sizes,
            expand_ratios=self.expand_ratios,
            depths=self.depths,
            resolutions=(resolution,),
        )

    def subnets(
        self, space: SearchSpace, rng: random.Random, resolution: int, random_count: int
    ) -> list[ArchConfig]:
        """The sandwich for one step: largest, smallest and ``random_count`` random ones."""
        largest = self.largest(space, resolution)
        if not self.elastic:
            return [largest]
        picks = [largest, self.smallest(space, resolution)]
        picks += [self.sample(space, rng, resolution) for _ in range(random_count)]
        return picks


def progressive_phases(space: SearchSpace, config: TrainConfig) -> list[Phase]:
    k_max, e_max, d_max = space.kernel_sizes[-1:], space.expand_ratios[-1:], space.depths[-1:]
    choices = [
        (k_max, e_max, d_max),
        (space.kernel_sizes, e_max, d_max),
        (space.kernel_sizes, e_max, space.depths),
        (space.kernel_sizes, space.expand_ratios, space.depths),
    ]
    return [
        Phase(
            name=name,
            epochs=epochs,
            lr=lr,
            kernel_sizes=kernels,
            expand_ratios=expands,
            depths=depths,
            sort_channels_first=name == "expand",
            distill=name != "full" and config.kd_ratio > 0,
        )
        for name, epochs, lr, (kernels, expands, depths) in zip(
            PHASE_NAMES, config.epochs_per_phase, config.lrs, choices, strict=True
        )
    ]
