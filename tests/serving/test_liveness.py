"""Liveness and readiness are separate health names: a server whose dependencies do not
answer is not ready (taken out of rotation) but alive (not restarted)."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ofa_fleet.serving.access import OperatorAuthenticator
from ofa_fleet.serving.server import LIVENESS_SERVICE, Server, ServerConfig, Service
from tests.loop_thread import LoopThread
from tests.server_process import OPERATOR_TOKEN

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
NAME = "ofa_fleet.v1.ProbeService"


async def _never_ready() -> bool:
    return False  # its database is down, say


def test_a_server_whose_dependencies_are_down_is_alive_but_not_ready():
    loop = LoopThread()
    service = Service(name=NAME, register=lambda server: None, rules={}, ready=_never_ready)

    async def started() -> tuple[Server, int]:  # gRPC's server belongs to the loop it is made on
        server = Server(
            ServerConfig(grace_seconds=0.5), [service], OperatorAuthenticator(OPERATOR_TOKEN)
        )
        return server, await server.start()

    try:
        server, port = loop.run(started())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)

            def status(name: str) -> int:
                request = health_pb2.HealthCheckRequest(service=name)
                return health.Check(request, timeout=10).status

            assert status("") == NOT_SERVING and status(NAME) == NOT_SERVING
            assert status(LIVENESS_SERVICE) == SERVING
            loop.run(server.stop())
    finally:
        loop.close()
