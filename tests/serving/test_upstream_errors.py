"""A service calling another keeps the caller's fault the caller's: what the other service
refused as bad input is not turned into a retryable UNAVAILABLE."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ofa_fleet.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.serving.client import open_aio_channel
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.v1 import registry_pb2_grpc
from tests.registry.conftest import example_profile
from tests.registry.server_thread import RegistryServerThread
from tests.server_process import OPERATOR_TOKEN


def test_the_callers_faults_pass_through_and_the_rest_is_unavailable(tmp_path: Path) -> None:
    async def scenario(address: str) -> None:
        async with open_aio_channel(address) as channel:
            client = RegistryClient(registry_pb2_grpc.RegistryServiceStub(channel), OPERATOR_TOKEN)
            with pytest.raises(InvalidArgumentError, match="lower-case") as bad:
                await client.get_profile("../../etc/passwd")
            assert "according to" in str(bad.value)
            with pytest.raises(NotFoundError):
                await client.get_profile("nothing-here")
            await client.create_profile(profile_to_proto(example_profile()))
            await client.create_fleet("pis", "raspberry-pi-4")
            with pytest.raises(FailedPreconditionError) as in_use:
                await client.delete_profile("raspberry-pi-4")
            assert in_use.value.reason == "PROFILE_IN_USE" and in_use.value.facts
            stranger = RegistryClient(registry_pb2_grpc.RegistryServiceStub(channel), "wrong")
            with pytest.raises(UnavailableError, match="retry"):  # our own credentials: not theirs
                await stranger.get_profile("raspberry-pi-4")

    with RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        asyncio.run(scenario(registry.address))
