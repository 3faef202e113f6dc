"""The genome evolution works on: every block slot's choices, active or not.

An `ArchConfig` holds only active blocks, so a stage that grows would have to invent its
new blocks. OFA's evolution instead carries a kernel and expand ratio for every slot of
every stage (as `ofa`'s arch encoder does): a deeper child inherits the hidden genes of
its parent, and crossover mixes whole genomes without aligning stages of different depth.
"""

from __future__ import annotations

import functools
import operator
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ofa_fleet.core.arch import ArchConfig, BlockChoice
from ofa_fleet.core.space import SearchSpace


@dataclass(frozen=True)
class Genome:
    """Resolution, depth per stage, and a kernel and expand ratio for every block slot.

    Slots are laid out stage by stage, ``space.max_depth`` per stage; a stage of depth
    ``d`` uses its first ``d`` slots.
    """

    resolution: int
    depths: tuple[int, ...]
    kernels: tuple[int, ...]
    expands: tuple[int, ...]

    def arch(self, space: SearchSpace) -> ArchConfig:
        slots = space.max_depth
        return ArchConfig(
            self.resolution,
            tuple(
                tuple(
                    _block(self.kernels[s * slots + b], self.expands[s * slots + b])
                    for b in range(depth)
                )
                for s, depth in enumerate(self.depths)
            ),
        )

    @functools.cached_property
    def active(self) -> tuple[int, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """What the arch is made of: the resolution, the depths and the active slots'
        genes, hidden ones left out. Genomes with equal ``active`` are one arch; telling
        so from this is far cheaper than building every proposal's arch and its string
        (that was a quarter of the evolution's time)."""
        pick = _active_slots(self.depths, len(self.kernels) // len(self.depths))
        return (self.resolution, self.depths, pick(self.kernels), pick(self.expands))

    @classmethod
    def of(cls, arch: ArchConfig, space: SearchSpace) -> Genome:
        """The genome of ``arch``; its hidden slots take the space's smallest choices."""
        kernels = [space.kernel_sizes[0]] * (space.num_stages * space.max_depth)
        expands = [space.expand_ratios[0]] * len(kernels)
        for s, stage in enumerate(arch.stages):
            for b, block in enumerate(stage):
                kernels[s * space.max_depth + b] = block.kernel
                expands[s * space.max_depth + b] = block.expand
        return cls(arch.resolution, arch.depths, tuple(kernels), tuple(expands))


@functools.cache
def _active_slots(
    depths: tuple[int, ...], slots: int
) -> Callable[[tuple[int, ...]], tuple[int, ...]]:
    """The genes of the slots ``depths`` use, picked from a genome's tuple in one C call;
    a space has a few hundred depth patterns, a search tells apart thousands of genomes."""
    used = [s * slots + b for s, depth in enumerate(depths) for b in range(depth)]
    if len(used) == 1:  # itemgetter of one index gives the item, not a tuple
        return lambda genes: (genes[used[0]],)
    return operator.itemgetter(*used)


@functools.cache
def _block(kernel: int, expand: int) -> BlockChoice:
    """One shared value per choice: a space has a handful, a search builds thousands."""
    return BlockChoice(kernel, expand)


class GenomeOperators:
    """Sampling, mutation and crossover within a space, as OFA's EvolutionFinder does them.

    Args:
        space: the search space.
        resolutions: the resolutions candidates may use (a device with a fixed camera
            resolution allows one).
        mutate_prob: chance that a block slot (kernel and expand ratio together) or a
            stage depth is redrawn.
        resolution_mutate_prob: chance that the resolution is redrawn.
    """

    def __init__(
        self,
        space: SearchSpace,
        resolutions: Sequence[int],
        mutate_prob: float = 0.1,
        resolution_mutate_prob: float = 0.5,
    ) -> None:
        self.space = space
        self.resolutions = tuple(resolutions)
        self.mutate_prob = mutate_prob
        self.resolution_mutate_prob = resolution_mutate_prob
        self.slots = space.num_stages * space.max_depth

    def sample(self, rng: random.Random) -> Genome:
        space = self.space
        return Genome(
            rng.choice(self.resolutions),
            tuple(rng.choice(space.depths) for _ in range(space.num_stages)),
            tuple(rng.choice(space.kernel_sizes) for _ in range(self.slots)),
            tuple(rng.choice(space.expand_ratios) for _ in range(self.slots)),
        )

    def smallest(self) -> list[Genome]:
        """The smallest subnet at every allowed resolution: the cheapest the space offers."""
        return [
            Genome(
                resolution,
                (self.space.depths[0],) * self.space.num_stages,
                (self.space.kernel_sizes[0],) * self.slots,
                (self.space.expand_ratios[0],) * self.slots,
            )
            for resolution in self.resolutions
        ]

    def mutate(self, genome: Genome, rng: random.Random, prob: float | None = None) -> Genome:
        space, p = self.space, self.mutate_prob if prob is None else prob
        resolution = genome.resolution
        if rng.random() < self.resolution_mutate_prob:
            resolution = rng.choice(self.resolutions)
        kernels, expands = list(genome.kernels), list(genome.expands)
        for i in range(self.slots):
            if rng.random() < p:
                kernels[i] = rng.choice(space.kernel_sizes)
                expands[i] = rng.choice(space.expand_ratios)
        depths = tuple(
            rng.choice(space.depths) if rng.random() < p else depth for depth in genome.depths
        )
        return Genome(resolution, depths, tuple(kernels), tuple(expands))

    @staticmethod
    def crossover(first: Genome, second: Genome, rng: random.Random) -> Genome:
        def mix(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
            # Every gene's coin flip from one draw of random bits, picked without a Python
            # loop: a `random()` call per gene was a tenth of the search's time.
            flips = map(int, format(rng.getrandbits(len(a)), f"0{len(a)}b"))
            return tuple(map(operator.getitem, zip(b, a, strict=True), flips))

        return Genome(
            first.resolution if rng.random() < 0.5 else second.resolution,
            mix(first.depths, second.depths),
            mix(first.kernels, second.kernels),
            mix(first.expands, second.expands),
        )
