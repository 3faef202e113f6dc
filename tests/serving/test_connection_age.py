"""Connections have a maximum age, so long-lived streams move to replicas added since."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.serving.server import ServerConfig
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.registry.server_thread import OPERATOR_TOKEN, RegistryServerThread, bearer

OPERATOR = bearer(OPERATOR_TOKEN)


def test_a_stream_older_than_the_age_and_its_grace_is_ended_and_the_client_reconnects(
    tmp_path: Path,
):
    config = ServerConfig(
        grace_seconds=1.0, max_connection_age_seconds=1.0, max_connection_age_grace_seconds=1.0
    )
    with (
        RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}", config) as registry,
        registry.channel() as channel,
    ):
        stub = RegistryServiceStub(channel)
        stream = stub.WatchChanges(pb.WatchChangesRequest(), metadata=OPERATOR, timeout=60)
        ended: list[grpc.StatusCode] = []
        started = time.monotonic()

        def drain() -> None:
            try:
                for _ in stream:
                    pass
            except grpc.RpcError as error:
                ended.append(error.code())

        reading = threading.Thread(target=drain, daemon=True)
        reading.start()
        reading.join(timeout=30)
        assert ended, "the stream outlived its connection's age and grace"
        assert time.monotonic() - started >= 1.5  # not before the age (less 10% jitter)
        # The same channel connects again for the next call.
        listed = stub.ListProfiles(pb.ListProfilesRequest(), metadata=OPERATOR, timeout=10)
        assert list(listed.profiles) == []


def test_the_options_follow_the_config_and_zero_means_never():
    options = dict(
        ServerConfig(max_connection_age_seconds=90, max_connection_age_grace_seconds=5).grpc_options
    )
    assert options["grpc.max_connection_age_ms"] == 90_000
    assert options["grpc.max_connection_age_grace_ms"] == 5_000
    never = dict(ServerConfig(max_connection_age_seconds=0).grpc_options)
    assert "grpc.max_connection_age_ms" not in never
    with pytest.raises(InvalidArgumentError, match="--max-connection-age-seconds"):
        ServerConfig(max_connection_age_seconds=-1)
