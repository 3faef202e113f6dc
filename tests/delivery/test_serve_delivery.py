"""`ofa-fleet serve delivery` as an operator starts it: a real process beside a registry."""

from __future__ import annotations

import stat
from pathlib import Path

import grpc
import pytest

from ofa_fleet.contract.signatures import public_key_id
from ofa_fleet.v1 import delivery_pb2, delivery_pb2_grpc
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.server_process import OPERATOR_TOKEN, ServerProcess

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("blobs", ["files", "database"])
def test_serve_delivery_serves_its_key_and_stops_on_sigterm(tmp_path: Path, blobs: str):
    key = tmp_path / "signing.key"
    with RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        server = ServerProcess(
            "delivery",
            *("--registry", registry.address, "--db", f"sqlite:///{tmp_path / 'delivery.db'}"),
            *("--blobs", str(tmp_path / "models") if blobs == "files" else "database"),
            *("--signing-key", str(key)),
        )
        with server, grpc.insecure_channel(server.address) as channel:
            answer = delivery_pb2_grpc.DeliveryServiceStub(channel).GetSigningKey(
                delivery_pb2.GetSigningKeyRequest(), metadata=bearer(OPERATOR_TOKEN), timeout=10
            )
            assert answer.key_id == public_key_id(answer.public_key_pem)
            assert stat.S_IMODE(key.stat().st_mode) == 0o600
            listing = delivery_pb2_grpc.DeliveryServiceStub(channel).ListModels(
                delivery_pb2.ListModelsRequest(parent="profiles/-"),
                metadata=bearer(OPERATOR_TOKEN),
                timeout=10,
            )
            assert list(listing.models) == []
            assert server.terminate() == 0
    assert '"stopped"' in server.log
    assert (tmp_path / "models").is_dir() == (blobs == "files")


def test_bad_flags_are_one_line_errors(tmp_path: Path):
    from tests.cli_runner import ofa_fleet

    result = ofa_fleet("serve", "delivery", "--chunk-bytes", "10", check=False)
    assert result.returncode == 2 and "--chunk-bytes must be 1024" in result.stderr


def test_one_replica_reconciles_and_a_standby_takes_over_when_it_dies(tmp_path: Path):
    """Two replicas on one store: one leads, the other stands by until the leader dies."""
    with RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        shared = (
            *("--registry", registry.address, "--db", f"sqlite:///{tmp_path / 'delivery.db'}"),
            *("--blobs", str(tmp_path / "models"), "--signing-key", str(tmp_path / "key")),
            *("--search", "127.0.0.1:1"),  # never reached: the registry has no profiles
        )
        with ServerProcess("delivery", *shared) as leader:
            leader.wait_for("leading", 30)
            with ServerProcess("delivery", *shared) as standby:
                standby.wait_for("standing by", 30)
                leader.kill()
                standby.wait_for("leading", 30)
                assert standby.terminate() == 0
    assert '"leading"' not in standby.log.split('"standing by"')[0]
