"""Genomes: every slot carries genes, so growing a stage inherits its hidden blocks."""

from __future__ import annotations

import random

from ofa_fleet.core.arch import ArchConfig, validate
from ofa_fleet.search.genome import Genome, GenomeOperators, _active_slots
from tests.search.landscape import SPACE


def test_arch_round_trips_through_its_genome():
    for seed in range(20):
        arch = ArchConfig.sample(SPACE, random.Random(seed))
        assert Genome.of(arch, SPACE).arch(SPACE) == arch


def test_deeper_stage_reveals_the_hidden_genes_it_carried():
    operators = GenomeOperators(SPACE, SPACE.resolutions)
    genome = operators.sample(random.Random(1))
    shallow = Genome(genome.resolution, (2,) * SPACE.num_stages, genome.kernels, genome.expands)
    deep = Genome(genome.resolution, (4,) * SPACE.num_stages, genome.kernels, genome.expands)
    for s in range(SPACE.num_stages):
        assert deep.arch(SPACE).stages[s][:2] == shallow.arch(SPACE).stages[s]
        slot = s * SPACE.max_depth + 3
        assert deep.arch(SPACE).stages[s][3].kernel == genome.kernels[slot]


def test_mutants_and_crossovers_stay_in_the_space_and_the_allowed_resolutions():
    operators = GenomeOperators(SPACE, (24, 28), mutate_prob=0.5, resolution_mutate_prob=1.0)
    rng = random.Random(0)
    parents = [operators.sample(rng) for _ in range(10)]
    for _ in range(200):
        a, b = rng.choice(parents), rng.choice(parents)
        for child in (operators.mutate(a, rng), operators.crossover(a, b, rng)):
            validate(child.arch(SPACE), SPACE)
            assert child.resolution in (24, 28)


def test_crossover_takes_every_gene_from_one_parent():
    operators = GenomeOperators(SPACE, SPACE.resolutions)
    rng = random.Random(3)
    a, b = operators.sample(rng), operators.sample(rng)
    child = operators.crossover(a, b, rng)
    for field in ("depths", "kernels", "expands"):
        for gene, x, y in zip(
            getattr(child, field), getattr(a, field), getattr(b, field), strict=True
        ):
            assert gene in (x, y)


def test_mutation_with_zero_probability_changes_nothing_but_may_move_resolution():
    operators = GenomeOperators(SPACE, (32,), mutate_prob=1e-12, resolution_mutate_prob=1.0)
    genome = Genome.of(ArchConfig.max(SPACE), SPACE)
    assert operators.mutate(genome, random.Random(0)) == genome


def test_smallest_covers_every_allowed_resolution():
    operators = GenomeOperators(SPACE, (24, 32))
    archs = [g.arch(SPACE) for g in operators.smallest()]
    assert [a.resolution for a in archs] == [24, 32]
    assert all(a.stages == ArchConfig.min(SPACE).stages for a in archs)


def test_the_active_genes_are_the_used_slots_of_each_stage_even_a_single_one():
    assert _active_slots((2, 1), 3)((1, 2, 3, 4, 5, 6)) == (1, 2, 4)
    assert _active_slots((1,), 4)((5, 6, 7, 8)) == (5,)  # a tuple, not the bare gene
