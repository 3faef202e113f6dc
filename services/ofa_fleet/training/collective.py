"""What data-parallel ranks agree on: averaged gradients, summed counts, shared weights.

Progressive shrinking runs several subnets through the supernet per step (the sandwich),
each with its own backward pass, and each subnet leaves other parameters unused. PyTorch's
``DistributedDataParallel`` wrapper would all-reduce after every backward pass and walk
the graph for unused parameters each time. Here every rank samples the same subnets
(seeded by the step), so the same parameters hold gradients on every rank; their
gradients are summed locally over the sandwich and averaged across ranks in one
all-reduce of one flat buffer per optimizer step. That is DDP's arithmetic, with one
collective a step instead of one per subnet, and parameters no subnet used keep no
gradient, exactly as in one process (so momentum and weight decay skip them alike).

`SingleProcess` is the default and does nothing; `TorchDistributed` works over
``torch.distributed``'s default group (gloo on CPU, NCCL on GPU), which Ray Train sets up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import torch
from torch import nn

from ofa_fleet.data import WHOLE, Shard


class Collective(Protocol):
    @property
    def shard(self) -> Shard: ...

    def average_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        """Replace each present gradient by its mean over the ranks."""
        ...

    def average_buffers(self, module: nn.Module) -> None:
        """Average floating-point buffers (BatchNorm's running statistics) over the ranks."""
        ...

    def broadcast_state(self, module: nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers."""
        ...

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over the ranks (counts, losses, CPU seconds)."""
        ...


class SingleProcess:
    """One process: nothing to agree on."""

    shard = WHOLE

    def average_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        pass

    def average_buffers(self, module: nn.Module) -> None:
        pass

    def broadcast_state(self, module: nn.Module) -> None:
        pass

    def sum(self, values: list[float]) -> list[float]:
        return list(values)


class TorchDistributed:
    """Ranks of ``torch.distributed``'s default process group, already initialised."""

    def __init__(self, device: torch.device) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("torch.distributed is not initialised on this worker")
        self._dist = dist
        self.device = device  # NCCL reduces tensors on the GPU, gloo on the CPU
        self.shard = Shard(dist.get_rank(), dist.get_world_size())

    def average_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        grads = [p.grad for p in parameters if p.grad is not None]
        self._reduce_mean(grads)

    def average_buffers(self, module: nn.Module) -> None:
        self._reduce_mean([b for b in module.buffers() if b.dtype.is_floating_point])

    def broadcast_state(self, module: nn.Module) -> None:
        tensors = [*module.parameters(), *module.buffers()]
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for tensor in tensors:
            by_dtype.setdefault(tensor.dtype, []).append(tensor.data)
        for group in by_dtype.values():
            flat = _flatten(group)
            self._dist.broadcast(flat, src=0)
            _unflatten(flat, group)

    def sum(self, values: list[float]) -> list[float]:
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        self._dist.all_reduce(tensor)
        return [float(v) for v in tensor.cpu()]

    def _reduce_mean(self, tensors: list[torch.Tensor]) -> None:
        """One all-reduce over one flat buffer (collectives cost per call, not per byte)."""
        if not tensors:
            return
        flat = _flatten(tensors)
        self._dist.all_reduce(flat)
        flat /= self.shard.count
        _unflatten(flat, tensors)


def _flatten(tensors: list[torch.Tensor]) -> torch.Tensor:
    # reshape reads each tensor in logical (N, C, H, W) order, whatever its memory format.
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflatten(flat: torch.Tensor, tensors: list[torch.Tensor]) -> None:
    offset = 0
    for tensor in tensors:
        tensor.copy_(flat[offset : offset + tensor.numel()].view_as(tensor))
        offset += tensor.numel()
