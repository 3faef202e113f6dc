"""MIT's own once-for-all network (the `ofa` package), built with random weights, as the
reference an imported supernet must match output for output.

The package is imported the way the benchmarks import it (`bench/peer_ofa.py`, the one
home for that): its data loaders import torchvision at module level, which does not
import beside this torch, and empty stand-ins take its place while `ofa` imports. The
network never touches them. The package itself is a dev dependency, so nothing is
installed here.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from typing import Any

import torch

from ofa_fleet.core.arch import ArchConfig, BlockChoice
from ofa_fleet.core.space import SearchSpace

STAGES, MAX_DEPTH = 5, 4
PEER = Path(__file__).resolve().parents[2] / "bench" / "peer_ofa.py"
OFA_MOBILENET_V3 = "ofa.imagenet_classification.elastic_nn.networks:OFAMobileNetV3"


def ofa_mobilenet_v3_class() -> Any:
    """`ofa.imagenet_classification.elastic_nn.networks.OFAMobileNetV3`."""
    name = "bench_peer_ofa"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, PEER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    peer = module.load_peer(OFA_MOBILENET_V3, install=False, log=lambda _: None)
    assert peer.available, f"the ofa package (a dev dependency) cannot be imported: {peer.reason}"
    return peer.objects["OFAMobileNetV3"]


def reference_network(width_mult: float = 1.0, seed: int = 0, num_classes: int = 1000) -> Any:
    """OFA's supernet in eval mode, with every part that could be mapped wrongly made to
    matter: kernel-transform matrices off identity, BatchNorm statistics and affine terms
    off their defaults, and logits large enough that 1e-4 is a tight bound."""
    torch.manual_seed(seed)
    network = ofa_mobilenet_v3_class()(
        n_classes=num_classes,
        dropout_rate=0.0,
        width_mult=width_mult,
        ks_list=[3, 5, 7],
        expand_ratio_list=[3, 4, 6],
        depth_list=[2, 3, 4],
    )
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if name.endswith("_matrix"):
                parameter.add_(0.05 * torch.randn_like(parameter))
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
        network.classifier.linear.weight.mul_(50.0)
    return network.eval()


def random_arch(space: SearchSpace, rng: random.Random) -> tuple[ArchConfig, dict[str, list[int]]]:
    """A random subnet, as our arch and as OFA's `set_active_subnet` arguments."""
    kernels = [rng.choice(space.kernel_sizes) for _ in range(STAGES * MAX_DEPTH)]
    expands = [rng.choice(space.expand_ratios) for _ in range(STAGES * MAX_DEPTH)]
    depths = [rng.choice(space.depths) for _ in range(STAGES)]
    return _both(space, rng.choice(space.resolutions), kernels, expands, depths)


def largest_arch(space: SearchSpace) -> tuple[ArchConfig, dict[str, list[int]]]:
    n = STAGES * MAX_DEPTH
    return _both(
        space,
        space.resolutions[-1],
        [space.kernel_sizes[-1]] * n,
        [space.expand_ratios[-1]] * n,
        [space.depths[-1]] * STAGES,
    )


def _both(
    space: SearchSpace, resolution: int, kernels: list[int], expands: list[int], depths: list[int]
) -> tuple[ArchConfig, dict[str, list[int]]]:
    stages = tuple(
        tuple(
            BlockChoice(kernels[s * MAX_DEPTH + b], expands[s * MAX_DEPTH + b])
            for b in range(depths[s])
        )
        for s in range(STAGES)
    )
    return ArchConfig(resolution, stages), {"ks": kernels, "e": expands, "d": depths}


def reference_logits(network: Any, choice: dict[str, list[int]], x: torch.Tensor) -> torch.Tensor:
    """OFA's own way to a subnet: `set_active_subnet`, then `get_active_subnet`."""
    network.set_active_subnet(**choice)
    subnet = network.get_active_subnet(preserve_weight=True).eval()
    with torch.no_grad():
        return subnet(x)
