"""The standard gRPC server metrics, counted by the shared interceptor on a real server."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from ofa_fleet.serving.server import ServerConfig
from ofa_fleet.v1 import registry_pb2
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.server_process import OPERATOR_TOKEN, ServerProcess

SERVICE = "ofa_fleet.v1.RegistryService"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(method: str, kind: str = "unary", **extra: str) -> frozenset[tuple[str, str]]:
    return frozenset(
        {"grpc_type": kind, "grpc_service": SERVICE, "grpc_method": method, **extra}.items()
    )


def test_calls_are_counted_by_method_and_code(tmp_path: Path):
    from prometheus_client import generate_latest

    with RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        with registry.channel() as channel:
            stub = registry.stub(channel)
            auth = bearer(OPERATOR_TOKEN)
            stub.ListProfiles(registry_pb2.ListProfilesRequest(), metadata=auth, timeout=10)
            stub.ListProfiles(registry_pb2.ListProfilesRequest(), metadata=auth, timeout=10)
            for request, metadata in (
                (registry_pb2.GetProfileRequest(name="profiles/absent"), auth),
                (registry_pb2.GetProfileRequest(name="profiles/absent"), bearer("wrong")),
            ):
                with pytest.raises(grpc.RpcError):
                    stub.GetProfile(request, metadata=metadata, timeout=10)
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert registry.server is not None
        got = samples(generate_latest(registry.server.metrics.registry).decode())
    assert got[("grpc_server_started_total", labels("ListProfiles"))] == 2
    assert got[("grpc_server_handled_total", labels("ListProfiles", grpc_code="OK"))] == 2
    assert got[("grpc_server_msg_sent_total", labels("ListProfiles"))] == 2
    assert got[("grpc_server_started_total", labels("GetProfile"))] == 2
    for code in ("NOT_FOUND", "UNAUTHENTICATED"):
        assert got[("grpc_server_handled_total", labels("GetProfile", grpc_code=code))] == 1
    # A method's series exist from its first call (at zero), as Prometheus prefers.
    assert got[("grpc_server_msg_sent_total", labels("GetProfile"))] == 0
    assert got[("grpc_server_handling_seconds_count", labels("ListProfiles"))] == 2
    # Health probes are not counted (they would swamp the methods people watch).
    assert not any("grpc.health" in str(key) for key in got)


def test_metrics_are_served_over_http_only_when_asked(tmp_path: Path):
    config = ServerConfig(grace_seconds=1.0, metrics_port=0)
    with RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}", config) as registry:
        assert registry.server is not None and registry.server.metrics.port > 0
        url = f"http://127.0.0.1:{registry.server.metrics.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.status == 200
            assert "grpc_server_handling_seconds" in answer.read().decode()
    with RegistryServerThread(f"sqlite:///{tmp_path / 'other.db'}") as registry:
        assert registry.server is not None and registry.server.metrics.port == 0


@pytest.mark.integration
def test_serve_takes_a_metrics_port_and_logs_where(tmp_path: Path):
    server = ServerProcess(
        "registry", "--db", f"sqlite:///{tmp_path / 'registry.db'}", "--metrics-port", "0"
    )
    with server:
        serving = json.loads(next(line for line in server.lines if '"serving"' in line))
        address = serving["metrics"]
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as answer:
            assert answer.status == 200
        assert server.terminate() == 0
