"""Subnets as rows of layer indices, so thousands are predicted with a few array ops.

Search scores thousands of candidates a second. Building `Layer` objects per candidate
would dominate that, so every distinct layer of the space gets an index once, a per-
layer figure becomes one entry of an array, and a batch of subnets becomes an (n, L)
index matrix: a sum or max along the rows is then a whole batch of predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ofa_fleet.core.arch import ArchConfig, BlockChoice, encoding_length, validate
from ofa_fleet.core.layers import Layer, space_layers, subnet_layers
from ofa_fleet.core.space import SearchSpace


class LayerIndex:
    """Indices of a space's distinct layers, and the index rows of subnets."""

    def __init__(self, space: SearchSpace, in_channels: int, num_classes: int) -> None:
        self.space = space
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.layers: list[Layer] = space_layers(space, in_channels, num_classes)
        self.position = {layer.key: i for i, layer in enumerate(self.layers)}
        self.padding = len(self.layers)  # index of the all-zero row of every figure array
        self.max_layers = 3 + space.num_stages * space.max_depth
        self._fixed: dict[int, tuple[int, int, int]] = {}
        # Keyed by plain ints: a search looks up every block of thousands of candidates,
        # and hashing a `BlockChoice` (a dataclass) was most of that lookup's cost.
        self._block: dict[tuple[int, int, bool, int, int], int] = {}
        choices = [BlockChoice(k, e) for k in space.kernel_sizes for e in space.expand_ratios]
        depth = min(2, space.max_depth)
        for resolution in space.resolutions:
            for choice in choices:
                arch = ArchConfig(resolution, tuple((choice,) * depth for _ in space.stages))
                layers = subnet_layers(space, arch, in_channels, num_classes)
                ids = [self.position[layer.key] for layer in layers]
                self._fixed[resolution] = (ids[0], ids[1], ids[-1])
                for stage in range(space.num_stages):
                    first = 2 + stage * depth
                    key = (choice.kernel, choice.expand)
                    self._block[(resolution, stage, True, *key)] = ids[first]
                    if depth > 1:
                        self._block[(resolution, stage, False, *key)] = ids[first + 1]

    def row(self, arch: ArchConfig) -> list[int]:
        """Layer indices of ``arch`` in execution order."""
        try:
            resolution = arch.resolution
            stem, first, head = self._fixed[resolution]
            ids = [stem, first]
            block = self._block
            if len(arch.stages) != self.space.num_stages:
                raise KeyError(arch)
            for stage, choices in enumerate(arch.stages):
                if len(choices) not in self.space.depths:
                    raise KeyError(arch)
                for position, choice in enumerate(choices):
                    key = (resolution, stage, position == 0, choice.kernel, choice.expand)
                    ids.append(block[key])
        except KeyError:
            validate(arch, self.space)  # raises the precise error
            raise
        ids.append(head)
        return ids

    def matrix(self, archs: Sequence[ArchConfig]) -> np.ndarray:
        """(n, max_layers) int array; unused slots point at the padding row."""
        return self.matrix_and_encodings(archs, encode=False)[0]

    def matrix_and_encodings(
        self, archs: Sequence[ArchConfig], encode: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The index matrix and, with ``encode``, `ArchConfig.encode` rows of ``archs``
        (built here in one pass, as encoding one arch at a time dominates a batch)."""
        space = self.space
        out = np.full((len(archs), self.max_layers), self.padding, dtype=np.int64)
        encodings = np.zeros((len(archs), encoding_length(space) if encode else 0), np.float32)
        k_count, slot = len(space.kernel_sizes), len(space.kernel_sizes) + len(space.expand_ratios)
        kernel_pos = {k: i for i, k in enumerate(space.kernel_sizes)}
        expand_pos = {e: k_count + i for i, e in enumerate(space.expand_ratios)}
        depth_offset = space.num_stages * space.max_depth * slot
        depth_pos = {d: i for i, d in enumerate(space.depths)}
        resolution_offset = depth_offset + space.num_stages * len(space.depths)
        resolution_pos = {r: i for i, r in enumerate(space.resolutions)}
        for i, arch in enumerate(archs):
            ids = self.row(arch)
            out[i, : len(ids)] = ids
            if not encode:
                continue
            hot = encodings[i]
            for s, stage in enumerate(arch.stages):
                for b, choice in enumerate(stage):
                    base = (s * space.max_depth + b) * slot
                    hot[base + kernel_pos[choice.kernel]] = 1.0
                    hot[base + expand_pos[choice.expand]] = 1.0
                hot[depth_offset + s * len(space.depths) + depth_pos[len(stage)]] = 1.0
            hot[resolution_offset + resolution_pos[arch.resolution]] = 1.0
        return out, encodings

    def figure(self, value: Callable[[Layer], float | np.ndarray]) -> np.ndarray:
        """Per-layer figure as an array with a trailing zero row for padding."""
        rows = [np.asarray(value(layer), dtype=np.float64) for layer in self.layers]
        return np.concatenate([np.stack(rows), np.zeros((1, *rows[0].shape))])
