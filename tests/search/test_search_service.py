"""SearchService over a real loopback socket: the stream, errors, cancellation, registry."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator

import grpc
import onnxruntime as ort
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ofa_fleet.core.checkpoint import load_checkpoint
from ofa_fleet.core.space import SearchSpace
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.predictors.accuracy import AccuracyPredictor
from ofa_fleet.search.accuracy_source import predictor_path
from ofa_fleet.search.specializer import Specializer
from ofa_fleet.search.stream import SpecializeStream
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc, search_pb2
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.search.conftest import example_profile
from tests.search.ray_processes import ray_workers
from tests.search.server_thread import SearchServerThread
from tests.server_process import OPERATOR_TOKEN

pytestmark = pytest.mark.slow

AUTH = bearer(OPERATOR_TOKEN)
SLOW = search_pb2.SearchOptions(
    population=1000, max_generations=1000, patience=1000, skip_cache=True
)


@pytest.fixture(scope="module")
def server(specializer: Specializer) -> Iterator[SearchServerThread]:
    with SearchServerThread(specializer) as running:
        yield running


@pytest.fixture
def stub(server: SearchServerThread) -> Iterator:
    with grpc.insecure_channel(server.address) as channel:
        yield server.stub(channel)


def request(profile=None, **options) -> search_pb2.SpecializeRequest:
    profile = profile or example_profile("raspberry-pi-3")
    return search_pb2.SpecializeRequest(
        profile=profile_to_proto(profile), options=search_pb2.SearchOptions(**options)
    )


def read(responses) -> tuple[list[search_pb2.SearchProgress], object]:
    stream = SpecializeStream()
    progress = [p for p in (stream.feed(r) for r in responses) if p is not None]
    return progress, stream.finish()


def wait_idle(server: SearchServerThread) -> None:
    deadline = time.monotonic() + 30
    while server.active or any("evolve" in n for n in ray_workers().values()):
        assert time.monotonic() < deadline, "the search kept running after its call ended"
        time.sleep(0.1)


def test_progress_then_result_then_the_model_in_chunks(stub, server):
    progress, remote = read(stub.Specialize(request(seed=3), metadata=AUTH, timeout=300))
    stages = [p.stage for p in progress]
    assert stages[0] == search_pb2.SEARCH_STAGE_EVOLUTION
    assert stages[-2:] == [search_pb2.SEARCH_STAGE_RERANK, search_pb2.SEARCH_STAGE_EXPORT]
    generations = [p.generation for p in progress if p.stage == search_pb2.SEARCH_STAGE_EVOLUTION]
    assert generations == sorted(generations) and generations[0] == 0
    bests = [p.best.top1 for p in progress if p.stage == search_pb2.SEARCH_STAGE_EVOLUTION]
    assert bests == sorted(bests)
    result = remote.result
    budget = example_profile("raspberry-pi-3").constraints.latency_budget_ms
    assert 0 < result.predicted.latency_ms <= budget
    assert result.arch_string == result.predicted.arch
    assert result.arch.resolution == int(result.arch_string.split("_")[0][1:])
    assert result.measured.model_bytes == result.model_size == len(remote.onnx_bytes)
    assert not result.measured.HasField("latency_ms")
    assert result.statistics.workers == 2 and not result.statistics.from_cache
    assert result.statistics.generations == max(generations)
    assert len(result.pareto_front) >= 2 and len(result.reranked) == 4
    assert result.latency_source == search_pb2.LATENCY_SOURCE_ANALYTIC
    ort.InferenceSession(remote.onnx_bytes, providers=["CPUExecutionProvider"])

    # What the search drew: its driver thread and every Ray task it ran.
    assert result.cost.cpu_seconds > 0 and result.cost.energy_joules > 0
    assert result.cost.co2e_grams > 0

    progress, again = read(stub.Specialize(request(seed=3), metadata=AUTH, timeout=60))
    assert progress == [] and again.result.statistics.from_cache
    assert again.onnx_bytes == remote.onnx_bytes
    assert again.result.cost == result.cost  # the first search's cost, not the cache hit's


@pytest.mark.parametrize(
    ("message", "code", "fragment"),
    [
        (search_pb2.SpecializeRequest(), "INVALID_ARGUMENT", "profile (inline) or profile_name"),
        (request(population=2), "INVALID_ARGUMENT", "population must be 4-1000"),
        (
            search_pb2.SpecializeRequest(profile_name="raspberry-pi-4"),
            "FAILED_PRECONDITION",
            "no registry",
        ),
        (
            request(
                dataclasses.replace(
                    example_profile(),
                    constraints=dataclasses.replace(
                        example_profile().constraints, latency_budget_ms=0.01
                    ),
                )
            ),
            "FAILED_PRECONDITION",
            "the fastest subnet needs",
        ),
    ],
)
def test_bad_requests_get_a_clear_status(stub, message, code, fragment):
    with pytest.raises(grpc.RpcError) as error:
        list(stub.Specialize(message, metadata=AUTH, timeout=60))
    assert error.value.code().name == code
    assert fragment in error.value.details()


def test_only_operators_may_specialize(stub):
    with pytest.raises(grpc.RpcError) as error:
        list(stub.Specialize(request(), timeout=30))
    assert error.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as error:
        list(stub.Specialize(request(), metadata=bearer("not-the-token"), timeout=30))
    assert error.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_get_supernet_names_the_version_every_result_carries(stub, specializer, search_checkpoint):
    answer = stub.GetSupernet(search_pb2.GetSupernetRequest(), metadata=AUTH, timeout=30)
    assert answer.version == specializer.supernet_version != ""
    assert answer.space_fingerprint == specializer.space.fingerprint
    # A device builds the space's layers from this alone (its own latency table).
    space = SearchSpace.from_dict(json.loads(answer.space_json))
    assert space.fingerprint == answer.space_fingerprint
    supernet = load_checkpoint(search_checkpoint).supernet
    assert (answer.in_channels, answer.num_classes) == (
        supernet.in_channels,
        supernet.num_classes,
    )
    # The supernet's ledger: its training phases as the checkpoint kept them, and the
    # accuracy predictor's fit (metered when the specializer fitted it on Ray).
    ledger = answer.ledger
    assert ledger.supernet_version == answer.version
    activities = [a.activity for a in ledger.activities]
    phases = load_checkpoint(search_checkpoint).figures.energy
    assert activities == ["training"] * len(phases) + ["predictor_fit"]
    fit = AccuracyPredictor.load(predictor_path(search_checkpoint)).fit_cost
    assert fit is not None and fit.cpu_seconds > 0
    assert ledger.activities[-1].cost.cpu_seconds == pytest.approx(fit.cpu_seconds)
    assert ledger.energy_model.power_source != ""
    _, result = read(stub.Specialize(request(), metadata=AUTH, timeout=120))
    assert result.result.supernet_version == answer.version
    with pytest.raises(grpc.RpcError) as error:
        stub.GetSupernet(search_pb2.GetSupernetRequest(), timeout=30)
    assert error.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_metrics_count_outcomes_candidates_and_stage_times(stub, server):
    def value(name: str, **labels: str) -> float:
        return server.metrics.registry.get_sample_value(name, labels) or 0.0

    before = {
        "ok": value("ofa_fleet_search_specializations_total", outcome="ok"),
        "cached": value("ofa_fleet_search_specializations_total", outcome="cached"),
        "candidates": value("ofa_fleet_search_candidates_evaluated_total"),
        "export": value("ofa_fleet_search_seconds_count", stage="export"),
    }
    _, first = read(stub.Specialize(request(seed=7), metadata=AUTH, timeout=120))
    read(stub.Specialize(request(seed=7), metadata=AUTH, timeout=120))  # from the cache
    assert value("ofa_fleet_search_specializations_total", outcome="ok") == before["ok"] + 1
    assert value("ofa_fleet_search_specializations_total", outcome="cached") == before["cached"] + 1
    assert (
        value("ofa_fleet_search_candidates_evaluated_total")
        == before["candidates"] + first.result.statistics.candidates_evaluated
    )
    assert value("ofa_fleet_search_seconds_count", stage="export") == before["export"] + 1
    assert value("ofa_fleet_search_specializations_active") == 0


def test_a_cancelled_call_stops_its_search(stub, server):
    call = stub.Specialize(request(**{f.name: v for f, v in SLOW.ListFields()}), metadata=AUTH)
    first = next(call)
    assert first.progress.stage == search_pb2.SEARCH_STAGE_EVOLUTION
    call.cancel()
    wait_idle(server)


def test_a_passed_deadline_stops_its_search(stub, server):
    slow = request(**{f.name: v for f, v in SLOW.ListFields()})
    with pytest.raises(grpc.RpcError) as error:
        list(stub.Specialize(slow, metadata=AUTH, timeout=3))
    assert error.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    wait_idle(server)


def test_health_reports_serving(server):
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(
            health_pb2.HealthCheckRequest(service="ofa_fleet.v1.SearchService"), timeout=10
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_a_profile_is_looked_up_in_the_registry_by_name(specializer, tmp_path):
    with RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        with registry.channel() as channel:
            registry_pb2_grpc.RegistryServiceStub(channel).CreateProfile(
                registry_pb2.CreateProfileRequest(
                    profile=profile_to_proto(example_profile("x86-gateway"))
                ),
                metadata=AUTH,
                timeout=10,
            )
        with (
            SearchServerThread(specializer, registry.address) as search,
            grpc.insecure_channel(search.address) as channel,
        ):
            stub = search.stub(channel)
            named = search_pb2.SpecializeRequest(profile_name="x86-gateway")
            _, remote = read(stub.Specialize(named, metadata=AUTH, timeout=300))
            assert remote.result.profile_name == "x86-gateway"
            missing = search_pb2.SpecializeRequest(profile_name="no-such-profile")
            with pytest.raises(grpc.RpcError) as error:
                list(stub.Specialize(missing, metadata=AUTH, timeout=30))
            assert error.value.code() is grpc.StatusCode.NOT_FOUND
            assert "no-such-profile" in error.value.details()
