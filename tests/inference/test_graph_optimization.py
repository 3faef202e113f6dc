"""The graph optimization level: named alike in profiles, tables and the contract, and
applied to the sessions that run and time models."""

from __future__ import annotations

import dataclasses

import onnxruntime as ort
import pytest

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.layers import subnet_layers
from ofa_fleet.core.space import cpu_space
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.hardware.profile_proto import profile_from_proto, profile_to_proto
from ofa_fleet.inference.graph_optimization import (
    GRAPH_OPTIMIZATIONS,
    graph_optimization_from_proto,
    graph_optimization_to_proto,
)
from ofa_fleet.inference.timing import make_session
from ofa_fleet.predictors.onnx_blocks import layers_model
from ofa_fleet.v1 import common_pb2
from tests.search.conftest import example_profile

ORT_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@pytest.mark.parametrize("level", GRAPH_OPTIMIZATIONS)
def test_every_level_round_trips_through_the_contract_and_a_profile(level):
    assert graph_optimization_from_proto(graph_optimization_to_proto(level), "x") == level
    spec = example_profile()
    spec = dataclasses.replace(
        spec, runtime=dataclasses.replace(spec.runtime, graph_optimization=level)
    )
    message = profile_to_proto(spec)
    assert profile_from_proto(message, "profile").runtime.graph_optimization == level


def test_unset_is_onnxruntimes_default_and_an_unknown_number_is_refused():
    assert graph_optimization_from_proto(common_pb2.GRAPH_OPTIMIZATION_UNSPECIFIED, "x") == "all"
    with pytest.raises(InvalidArgumentError, match=r"runtime\.graph_optimization 99"):
        graph_optimization_from_proto(99, "runtime.graph_optimization")
    message = profile_to_proto(example_profile())
    message.runtime.graph_optimization = 99  # type: ignore[assignment]
    with pytest.raises(InvalidArgumentError, match=r"profile\.runtime\.graph_optimization 99"):
        profile_from_proto(message, "profile")


@pytest.mark.parametrize("level", GRAPH_OPTIMIZATIONS)
def test_sessions_load_models_at_the_level_asked(level):
    space = cpu_space()
    layers = subnet_layers(space, ArchConfig.min(space), 3, 10)
    session = make_session(layers_model(layers), 1, "CPUExecutionProvider", level)
    assert session.get_session_options().graph_optimization_level == ORT_LEVELS[level]
