"""`/metrics` for Prometheus, beside a server's gRPC port.

Each server keeps its own `CollectorRegistry` rather than prometheus-client's global one:
tests run several servers in one process, and `ofa-fleet up` would otherwise mix one
service's figures into another's scrape. The endpoint is plain HTTP on its own port (a
scrape carries no secrets, and Prometheus' default is plain HTTP); it listens on the
server's host, so a loopback server's metrics stay on loopback too.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.serving.grpc_metrics import GrpcServerMetrics

log = logging.getLogger("ofa_fleet.server")


@dataclass
class MetricsEndpoint:
    """A registry, the server's gRPC metrics in it, and the HTTP endpoint once started."""

    registry: CollectorRegistry
    grpc: GrpcServerMetrics
    port: int = 0
    _http: WSGIServer | None = None
    _thread: threading.Thread | None = None

    @classmethod
    def create(cls) -> MetricsEndpoint:
        registry = CollectorRegistry(auto_describe=True)
        return cls(registry, GrpcServerMetrics(registry))

    def start(self, host: str, port: int) -> int:
        """Serve `/metrics` on `host:port` (0 picks a free port); returns the port."""
        if not 0 <= port <= 65535:
            raise InvalidArgumentError(f"--metrics-port must be 0-65535, got {port}")
        try:
            self._http, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as error:
            raise InvalidArgumentError(
                f"cannot serve metrics on {host}:{port}: {error.strerror}"
            ) from None
        self.port = self._http.server_port
        log.info("metrics", extra={"address": f"{host}:{self.port}", "path": "/metrics"})
        return self.port

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
