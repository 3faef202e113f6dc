"""`ofa_fleet.client`'s search side against a real search service on Ray: the supernet's
version, and a specialization followed to its checked model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ofa_fleet.client import AsyncFleetClient, ClientSettings, FleetClient
from ofa_fleet.errors import RemoteCallError
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.search.specializer import Specializer
from ofa_fleet.serving.tls import TlsFiles
from ofa_fleet.v1 import search_pb2
from tests.search.conftest import example_profile
from tests.search.server_thread import SearchServerThread
from tests.server_process import OPERATOR_TOKEN

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(specializer: Specializer) -> Iterator[SearchServerThread]:
    with SearchServerThread(specializer) as running:
        yield running


def settings(server: SearchServerThread, token: str = OPERATOR_TOKEN) -> ClientSettings:
    return ClientSettings(
        registry="127.0.0.1:1",  # not used here
        delivery="127.0.0.1:1",
        search=server.address,
        token=token,
        tls=TlsFiles(),
    )


def test_specialize_follows_progress_to_a_checked_model(server: SearchServerThread) -> None:
    profile = profile_to_proto(example_profile("raspberry-pi-3"))
    stages: list[int] = []

    async def use() -> tuple[str, search_pb2.SpecializeResult, int]:
        async with AsyncFleetClient(settings(server)) as fleet:
            supernet = await fleet.search.get_supernet()
            remote = await fleet.search.specialize(
                profile,
                search_pb2.SearchOptions(seed=5, patience=5),
                on_progress=lambda p: stages.append(p.stage),
            )
            return supernet.version, remote.result, len(remote.onnx_bytes)

    version, result, size = asyncio.run(use())
    assert result.supernet_version == version and size == result.model_size > 0
    assert stages[0] == search_pb2.SEARCH_STAGE_EVOLUTION
    assert stages[-1] == search_pb2.SEARCH_STAGE_EXPORT


def test_a_refused_token_is_the_servers_status(server: SearchServerThread) -> None:
    with FleetClient(settings(server, "x" * 32)) as fleet, pytest.raises(RemoteCallError) as no:
        fleet.search.get_supernet()
    assert no.value.code == "UNAUTHENTICATED"
