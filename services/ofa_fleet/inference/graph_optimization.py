"""onnxruntime's graph optimization level, as profiles, latency tables and devices name it.

The level is part of how a device runs its model, like its thread count: without
onnxruntime's fusions and layout changes the same subnet takes several times longer
(measured on this project's 2-core VM: 3 to 7 times, more for wide, large-kernel
subnets), and not by one factor, so a latency table holds for one level only.
"""

from __future__ import annotations

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.v1 import common_pb2

# Fewest optimizations first; "all" is onnxruntime's own default.
GRAPH_OPTIMIZATIONS = ("disabled", "basic", "extended", "all")
DEFAULT_GRAPH_OPTIMIZATION = "all"


def check_graph_optimization(level: object, where: str) -> str:
    if level not in GRAPH_OPTIMIZATIONS:
        raise InvalidArgumentError(
            f"{where} must be one of {list(GRAPH_OPTIMIZATIONS)}, got {level!r}"
        )
    return str(level)


def graph_optimization_to_proto(level: str) -> common_pb2.GraphOptimization:
    return common_pb2.GraphOptimization.Value(  # type: ignore[return-value]
        "GRAPH_OPTIMIZATION_" + check_graph_optimization(level, "graph optimization").upper()
    )


def graph_optimization_from_proto(value: int, where: str) -> str:
    """The level's name; UNSPECIFIED is onnxruntime's default, and a number this side does
    not know (a newer peer's) is INVALID_ARGUMENT rather than a guess."""
    if value == common_pb2.GRAPH_OPTIMIZATION_UNSPECIFIED:
        return DEFAULT_GRAPH_OPTIMIZATION
    try:
        name = common_pb2.GraphOptimization.Name(value)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgumentError(f"{where} {value} is not a known level") from None
    return name.removeprefix("GRAPH_OPTIMIZATION_").lower()
