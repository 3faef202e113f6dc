"""The registry as an operator runs it: a real process, signals, TLS, grpcurl, kill -9."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.registry.migrations import REGISTRY_MIGRATIONS
from ofa_fleet.registry.records import ChangeKind
from ofa_fleet.registry.store import RegistryStore
from ofa_fleet.registry.tables import DeviceRow
from ofa_fleet.serving.client import open_channel
from ofa_fleet.serving.server import LIVENESS_SERVICE
from ofa_fleet.serving.tls import TlsFiles
from ofa_fleet.storage.database import Database, DatabaseUrl
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests import tools
from tests.certificates import make_pki
from tests.cli_runner import ofa_fleet
from tests.registry.conftest import example_profile
from tests.registry.server_process import (
    RegistryProcess,
    all_device_ids,
    kill_during_enrolment,
    sqlite_url,
)
from tests.registry.server_thread import OPERATOR_TOKEN, bearer

pytestmark = pytest.mark.integration
OPERATOR = bearer(OPERATOR_TOKEN)


def _create_profile(stub: RegistryServiceStub) -> None:
    spec = profile_to_proto(example_profile())
    stub.CreateProfile(pb.CreateProfileRequest(profile=spec), metadata=OPERATOR, timeout=10)


def test_sigterm_ends_streams_and_exits_cleanly(tmp_path: Path) -> None:
    with (
        RegistryProcess(sqlite_url(tmp_path)) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        stub = RegistryServiceStub(channel)
        stream = stub.WatchChanges(pb.WatchChangesRequest(), metadata=OPERATOR, timeout=60)
        received: list[pb.WatchChangesResponse] = []
        reader = threading.Thread(target=lambda: received.extend(stream), daemon=True)
        reader.start()
        _create_profile(stub)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.terminate() == 0
        reader.join(timeout=10)
        assert not reader.is_alive(), "the watch stream did not end on shutdown"
        assert [c.id for c in received] == ["raspberry-pi-4"]
        assert all(line.startswith("{") for line in server.lines), server.log
        events = [json.loads(line)["event"] for line in server.lines]
        assert events[-1] == "stopped"
        assert events.index("stopping") < events.index("stopped")
    with (
        RegistryProcess(sqlite_url(tmp_path)) as again,
        grpc.insecure_channel(again.address) as channel,
    ):
        got = RegistryServiceStub(channel).GetProfile(
            pb.GetProfileRequest(name="profiles/raspberry-pi-4"), metadata=OPERATOR, timeout=10
        )
        assert got.profile.revision == 1


def test_plaintext_only_on_loopback(tmp_path: Path) -> None:
    result = ofa_fleet(
        "serve", "registry", "--host", "0.0.0.0", "--db", sqlite_url(tmp_path), check=False
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without TLS" in result.stderr


def test_tls_and_mutual_tls(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    server_tls = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    request = pb.ListProfilesRequest()
    with RegistryProcess(sqlite_url(tmp_path), *server_tls) as server:
        port = server.address.rsplit(":", 1)[1]
        address = f"localhost:{port}"
        with open_channel(address, TlsFiles(ca=pki.ca)) as channel:
            RegistryServiceStub(channel).ListProfiles(request, metadata=OPERATOR, timeout=10)
        with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as caught:
            RegistryServiceStub(channel).ListProfiles(request, metadata=OPERATOR, timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    mutual = [*server_tls, "--tls-client-ca", str(pki.ca)]
    with RegistryProcess(sqlite_url(tmp_path), *mutual) as server:
        address = "localhost:" + server.address.rsplit(":", 1)[1]
        client = TlsFiles(cert=pki.client_cert, key=pki.client_key, ca=pki.ca)
        with open_channel(address, client) as channel:
            RegistryServiceStub(channel).ListProfiles(request, metadata=OPERATOR, timeout=10)
        with (
            open_channel(address, TlsFiles(ca=pki.ca)) as channel,
            pytest.raises(grpc.RpcError) as caught,
        ):
            RegistryServiceStub(channel).ListProfiles(request, metadata=OPERATOR, timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_plaintext_port_beside_mutual_tls_serves_callers_inside(tmp_path: Path) -> None:
    """Devices outside present certificates on --port; peers and probes inside the
    cluster use --plaintext-port, which serves every service and health."""
    pki = make_pki(tmp_path)
    mutual = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    mutual += ["--tls-client-ca", str(pki.ca), "--plaintext-port", "0"]
    request = pb.ListProfilesRequest()
    with RegistryProcess(sqlite_url(tmp_path), *mutual) as server:
        tls_port = server.address.rsplit(":", 1)[1]
        (serving,) = [json.loads(line) for line in server.log.splitlines() if '"serving"' in line]
        inside = f"127.0.0.1:{serving['plaintext_port']}"
        assert serving["tls"] == "mutual" and serving["plaintext_port"] != int(tls_port)
        with grpc.insecure_channel(inside) as channel:
            RegistryServiceStub(channel).ListProfiles(request, metadata=OPERATOR, timeout=10)
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=LIVENESS_SERVICE), timeout=10
            )
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        client = TlsFiles(cert=pki.client_cert, key=pki.client_key, ca=pki.ca)
        with open_channel(f"localhost:{tls_port}", client) as channel:
            RegistryServiceStub(channel).ListProfiles(request, metadata=OPERATOR, timeout=10)
        with (
            grpc.insecure_channel(f"127.0.0.1:{tls_port}") as channel,
            pytest.raises(grpc.RpcError) as caught,
        ):
            RegistryServiceStub(channel).ListProfiles(request, metadata=OPERATOR, timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("tls", "flags", "message"),
    [
        (False, ["--allow-plaintext", "--plaintext-port", "0"], "beside a TLS --port"),
        (True, ["--plaintext-port", "0"], "refusing a plaintext port on 0.0.0.0"),
    ],
)
def test_a_plaintext_port_needs_tls_and_consent(
    tmp_path: Path, tls: bool, flags: list[str], message: str
) -> None:
    pki = make_pki(tmp_path)
    if tls:
        flags = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), *flags]
    result = ofa_fleet(
        "serve", "registry", "--host", "0.0.0.0", *flags, "--db", sqlite_url(tmp_path), check=False
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_grpcurl_lists_and_calls_through_reflection(tmp_path: Path) -> None:
    grpcurl = str(tools.grpcurl())
    with RegistryProcess(sqlite_url(tmp_path)) as server:
        listed = subprocess.run(
            [grpcurl, "-plaintext", server.address, "list"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "ofa_fleet.v1.RegistryService" in listed.stdout.split(), listed.stderr
        assert "grpc.health.v1.Health" in listed.stdout.split()
        call = [grpcurl, "-plaintext", "-d", '{"page_size": 5}']
        method = [server.address, "ofa_fleet.v1.RegistryService/ListProfiles"]
        allowed = subprocess.run(
            [*call, "-H", f"authorization: Bearer {OPERATOR_TOKEN}", *method],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert allowed.returncode == 0, allowed.stderr
        assert json.loads(allowed.stdout) == {}
        refused = subprocess.run([*call, *method], capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0
        assert "Unauthenticated" in refused.stderr
        health = subprocess.run(
            [grpcurl, "-plaintext", server.address, "grpc.health.v1.Health/Check"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert json.loads(health.stdout) == {"status": "SERVING"}


def test_kill_9_loses_no_acknowledged_registration(db_url: str) -> None:
    """Devices enrol from 8 threads; kill -9 mid-burst; every acknowledged one survives whole."""
    with RegistryProcess(db_url) as server, grpc.insecure_channel(server.address) as channel:
        stub = RegistryServiceStub(channel)
        _create_profile(stub)
        token = stub.CreateFleet(
            pb.CreateFleetRequest(
                fleet_id="burst", fleet=pb.Fleet(profile="profiles/raspberry-pi-4")
            ),
            metadata=OPERATOR,
        ).enrolment_token
        acknowledged = kill_during_enrolment(server, stub, token, lambda acked: len(acked) >= 150)
    assert len(acknowledged) >= 150
    database = Database(DatabaseUrl.parse(db_url), REGISTRY_MIGRATIONS)
    try:
        store = RegistryStore(database)
        stored = all_device_ids(store)
        assert set(acknowledged) <= set(stored), "an acknowledged registration was lost"
        with database.read() as s:
            rows = s.query(DeviceRow).all()
        assert all(len(r.token_hash) == 64 and r.fleet_name == "burst" for r in rows)
        created = [c for c in store.changes_after(0, limit=100_000) if c.kind is ChangeKind.DEVICE]
        assert sorted(c.entity_id for c in created) == sorted(stored)  # no half-written device
    finally:
        database.close()
