#!/opt/ofa-fleet/bin/python
"""The container's HEALTHCHECK: is the OFA Fleet server in this container SERVING?

Asks the gRPC health service (grpc.health.v1, service "" = the whole server) over
plaintext loopback. The image runs any of the three servers, so without
OFA_FLEET_HEALTH_ADDRESS it asks each default port and is healthy when one of them
answers SERVING; a server that is starting, draining or not ready answers NOT_SERVING.
Prints one line; exit status 0 healthy, 1 not.
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_ADDRESSES = ("127.0.0.1:50051", "127.0.0.1:50052", "127.0.0.1:50053")
TIMEOUT_SECONDS = 3.0


def status(address: str, service: str = "") -> str:
    """The health status name the server at `address` reports, or the RPC's failure code."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_SECONDS
            )
        except grpc.RpcError as error:
            return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    configured = os.environ.get("OFA_FLEET_HEALTH_ADDRESS", "")
    addresses = args or [a for a in configured.split(",") if a] or list(DEFAULT_ADDRESSES)
    seen = []
    for address in addresses:
        answer = status(address)
        if answer == "SERVING":
            print(f"{address} SERVING")
            return 0
        seen.append(f"{address} {answer}")
    print("; ".join(seen))
    return 1


if __name__ == "__main__":
    sys.exit(main())
