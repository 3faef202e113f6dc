"""`ofa-fleet search` and `ofa-fleet serve search` as a user runs them: real processes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import grpc
import pytest

from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.core.checkpoint import load_checkpoint
from ofa_fleet.hardware.local_machine import local_profile
from ofa_fleet.hardware.profile_file import load_latency_table
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.predictors.subnet_predictor import SubnetPredictor
from ofa_fleet.search.stream import SpecializeStream
from ofa_fleet.v1 import search_pb2, search_pb2_grpc
from tests.cli_runner import ofa_fleet
from tests.registry.server_thread import bearer
from tests.search.conftest import PROFILES, example_profile
from tests.server_process import OPERATOR_TOKEN, ServerProcess

pytestmark = pytest.mark.slow

# The search commands start a local Ray of their own; on loopback, without its token.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# A short evolution: what these tests check is the command around it (the evolution's own
# behaviour is tested in test_evolution.py); it stops on generations, not convergence.
SHORT = ("--population", "24", "--generations", "6")


def test_search_for_a_profile_writes_the_model_the_front_and_json(
    specializer, search_checkpoint: Path, tmp_path: Path
):
    model, plot = tmp_path / "model.onnx", tmp_path / "front.png"
    result = ofa_fleet(
        *("search", "--checkpoint", str(search_checkpoint)),
        *("--profile", str(PROFILES / "raspberry-pi-4.yaml"), "--top-k", "2"),
        *("--out", str(model), "--plot", str(plot), *SHORT, "--json"),
    )
    summary = json.loads(result.stdout)
    budget = example_profile("raspberry-pi-4").constraints.latency_budget_ms
    assert summary["budget_ms"] == budget
    assert 0 < summary["predicted"]["latency_ms"] <= budget
    assert summary["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert summary["measured"]["model_bytes"] == model.stat().st_size
    assert summary["measured"]["latency_ms"] is None
    assert summary["latency_source"] == "analytic"
    assert len(summary["reranked"]) == 2 and len(summary["pareto_front"]) >= 2
    assert summary["statistics"]["generations"] <= 6  # the command's flags reached the search
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The search's cost, its Ray workers' CPU time included.
    assert summary["cost"]["cpu_seconds"] > summary["statistics"]["driver_cpu_seconds"]
    assert summary["cost"]["joules"] > 0


def test_search_for_this_machine_measures_the_chosen_model(
    specializer, search_checkpoint: Path, lut: Path
):
    checkpoint = load_checkpoint(search_checkpoint)
    table = load_latency_table(lut)
    predictor = SubnetPredictor(checkpoint.space, 1, 10, local_profile(1, table))
    fastest = float(predictor.predict([ArchConfig.min(checkpoint.space)]).latency_ms[0])
    budget = round(2 * fastest, 3)
    result = ofa_fleet(
        *("search", "--checkpoint", str(search_checkpoint), "--lut", str(lut)),
        *("--latency-budget", str(budget), "--top-k", "2", *SHORT, "--json"),
    )
    summary = json.loads(result.stdout)
    assert summary["latency_source"] == "lut"
    assert summary["predicted"]["latency_ms"] <= budget
    assert summary["measured"]["latency_ms"] > 0  # timed here; its value depends on the load


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--lut", "lut.json"), "--lut needs --latency-budget MS"),
        (("--profile", str(PROFILES / "raspberry-pi-3.yaml"), "--latency-budget", "0.001"),
         "the fastest subnet needs"),
        (("--profile", "/nonexistent.yaml"), "/nonexistent.yaml"),
    ],
)  # fmt: skip
def test_search_errors_are_one_line(search_checkpoint: Path, specializer, args, fragment):
    result = ofa_fleet("search", "--checkpoint", str(search_checkpoint), *args, *SHORT, check=False)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0]
    assert "Traceback" not in result.stderr


def test_serve_search_answers_and_stops_on_sigterm(specializer, search_checkpoint: Path):
    server = ServerProcess("search", "--checkpoint", str(search_checkpoint), "--workers", "1")
    with server, grpc.insecure_channel(server.address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        stream = SpecializeStream()
        request = search_pb2.SpecializeRequest(
            profile=profile_to_proto(example_profile("x86-gateway")),
            options=search_pb2.SearchOptions(rerank_top_k=1, population=24, max_generations=6),
        )
        for response in stub.Specialize(request, metadata=bearer(OPERATOR_TOKEN), timeout=300):
            stream.feed(response)
        remote = stream.finish()
        assert remote.result.statistics.workers == 1
        assert remote.result.profile_name == "x86-gateway"
        assert server.terminate() == 0
    assert '"stopped"' in server.log
