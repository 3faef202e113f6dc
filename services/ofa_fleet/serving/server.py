"""The one server bootstrap every OFA Fleet service runs on.

It builds a `grpc.aio` server with the shared interceptor, message limits and keepalive
settings; registers health checking (reporting real readiness: a service is SERVING only
while its own check passes) and reflection (so grpcurl can list and call it); listens in
plaintext on loopback or with TLS; and shuts down gracefully: on SIGTERM health turns
NOT_SERVING, long streams are told to end, in-flight calls get `grace_seconds` to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.serving.access import AccessRule, Authenticator
from ofa_fleet.serving.channel_options import SERVER_OPTIONS
from ofa_fleet.serving.interceptor import CallInterceptor
from ofa_fleet.serving.metrics_endpoint import MetricsEndpoint
from ofa_fleet.serving.tls import TlsFiles, is_loopback, server_credentials

log = logging.getLogger("ofa_fleet.server")

# grpc.aio finishes each call in tasks of its own, a few ms after `server.stop()` returns;
# `asyncio.run` cancels whatever is left, and grpc reports that as an error with a traceback.
_GRPC_CALL_TASKS = frozenset({"_schedule_rpc_coro", "_handle_exceptions"})
_CALL_TASKS_BOUND_S = 2.0


# The health service name a liveness probe checks (`grpc.health.v1`): SERVING from start
# until shutdown. The overall name "" and each service's name report readiness instead.
LIVENESS_SERVICE = "ofa_fleet.Liveness"
DEFAULT_MAX_CONNECTION_AGE_SECONDS = 1800.0
DEFAULT_MAX_CONNECTION_AGE_GRACE_SECONDS = 60.0
MAX_CONNECTION_AGE_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    tls: TlsFiles = field(default_factory=TlsFiles)
    allow_plaintext: bool = False
    grace_seconds: float = 10.0
    # Connections are closed after this long (gRPC adds +-10% jitter; 0: never), and the
    # streams still open on them get `max_connection_age_grace_seconds` more: so that a
    # Service's long-lived connections (devices' WatchModel streams) spread over replicas
    # added since, instead of staying on the pods that were there first.
    max_connection_age_seconds: float = DEFAULT_MAX_CONNECTION_AGE_SECONDS
    max_connection_age_grace_seconds: float = DEFAULT_MAX_CONNECTION_AGE_GRACE_SECONDS
    readiness_interval_seconds: float = 5.0
    # Where `/metrics` is served (on `host`); None serves none, 0 picks a free port.
    metrics_port: int | None = None
    # A second listener beside a TLS `port`, in plaintext, with every service: for callers
    # inside a cluster (peers, Kubernetes' gRPC probes, which speak no TLS) while devices
    # come from outside over TLS. None: none; 0 picks a free port.
    plaintext_port: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InvalidArgumentError(f"--port must be 0-65535, got {self.port}")
        if not self.tls.enabled and not is_loopback(self.host) and not self.allow_plaintext:
            raise InvalidArgumentError(
                f"refusing to listen on {self.host} without TLS: give --tls-cert and "
                "--tls-key, listen on 127.0.0.1, or pass --allow-plaintext when a proxy "
                "or mesh encrypts the traffic"
            )
        if self.tls.enabled and self.tls.cert is None:
            raise InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key too")
        if self.plaintext_port is not None:
            if not 0 <= self.plaintext_port <= 65535:
                raise InvalidArgumentError(
                    f"--plaintext-port must be 0-65535, got {self.plaintext_port}"
                )
            if not self.tls.enabled:
                raise InvalidArgumentError(
                    "--plaintext-port is a second listener beside a TLS --port: give "
                    "--tls-cert and --tls-key, or serve plaintext on --port alone"
                )
            if not is_loopback(self.host) and not self.allow_plaintext:
                raise InvalidArgumentError(
                    f"refusing a plaintext port on {self.host}: pass --allow-plaintext when "
                    "only callers inside a trusted network (a cluster's pods, with network "
                    "policies) can reach it"
                )
        for flag, value in (
            ("--max-connection-age-seconds", self.max_connection_age_seconds),
            ("--max-connection-age-grace-seconds", self.max_connection_age_grace_seconds),
        ):
            if not 0 <= value <= MAX_CONNECTION_AGE_SECONDS:
                raise InvalidArgumentError(
                    f"{flag} must be 0 to {MAX_CONNECTION_AGE_SECONDS:g} seconds, got {value}"
                )

    @property
    def grpc_options(self) -> list[tuple[str, int]]:
        """The server's gRPC options: the shared ones, and the connection age."""
        options = list(SERVER_OPTIONS)
        if self.max_connection_age_seconds > 0:
            options += [
                ("grpc.max_connection_age_ms", int(self.max_connection_age_seconds * 1000)),
                (
                    "grpc.max_connection_age_grace_ms",
                    int(self.max_connection_age_grace_seconds * 1000),
                ),
            ]
        return options


@dataclass(frozen=True)
class Service:
    """What one gRPC service brings to the bootstrap.

    Attributes:
        name: full service name, e.g. ``ofa_fleet.v1.RegistryService``.
        register: adds the servicer to the server.
        rules: access rule for every method path of the service.
        ready: whether the service can answer right now (its database, its peers).
        stopping: called once on shutdown so long-running streams end by themselves.
        background: housekeeping that runs while the server serves (started after it
            listens, cancelled when it stops); it must not end by itself.
    """

    name: str
    register: Callable[[aio.Server], None]
    rules: Mapping[str, AccessRule]
    ready: Callable[[], Awaitable[bool]]
    stopping: Callable[[], None] = lambda: None
    background: Callable[[], Coroutine[Any, Any, None]] | None = None


class Server:
    """A running server; `start`, then `wait` (until SIGTERM/SIGINT) or `stop`."""

    def __init__(
        self,
        config: ServerConfig,
        services: Sequence[Service],
        authenticator: Authenticator,
        metrics: MetricsEndpoint | None = None,
    ) -> None:
        self.config = config
        # Calls are counted even when nothing scrapes them (cheap), so that a test or an
        # embedding program can read `metrics.registry` without an HTTP endpoint.
        self.metrics = metrics or MetricsEndpoint.create()
        self.services = tuple(services)
        rules: dict[str, AccessRule] = {}
        for service in self.services:
            rules.update(service.rules)
        self._server = aio.server(
            interceptors=[CallInterceptor(rules, authenticator, self.metrics.grpc)],
            options=config.grpc_options,
        )
        self._health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self._stopped = asyncio.Event()
        self._readiness: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self.port = 0
        self.plaintext_port = 0

    @property
    def address(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"{host}:{self.port}"

    async def start(self) -> int:
        for service in self.services:
            service.register(self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            [s.name for s in self.services]
            + [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            self._server,
        )
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        target = f"{host}:{self.config.port}"
        if self.config.tls.enabled:
            self.port = self._server.add_secure_port(target, server_credentials(self.config.tls))
        else:
            self.port = self._server.add_insecure_port(target)
        if self.config.plaintext_port is not None:
            self.plaintext_port = self._server.add_insecure_port(
                f"{host}:{self.config.plaintext_port}"
            )
        if self.config.metrics_port is not None:
            self.metrics.start(self.config.host, self.config.metrics_port)
        await self._server.start()
        # Alive while this process answers health checks, whatever its dependencies say:
        # a liveness probe on it restarts a stuck server, never one waiting out a
        # database outage (which only takes it out of rotation, through readiness).
        await self._health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self._check_readiness()
        self._readiness = asyncio.create_task(self._watch_readiness())
        self._background = [
            asyncio.create_task(s.background()) for s in self.services if s.background
        ]
        log.info(
            "serving",
            extra={
                "address": self.address,
                "services": [s.name for s in self.services],
                "tls": "mutual"
                if self.config.tls.ca
                else "on"
                if self.config.tls.enabled
                else "off",
                "metrics": f"{host}:{self.metrics.port}" if self.metrics.port else "",
                "plaintext_port": self.plaintext_port or "",
            },
        )
        return self.port

    async def wait(self) -> None:
        """Serve until SIGTERM or SIGINT, then stop gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        waiter = asyncio.create_task(stop.wait())
        stopped = asyncio.create_task(self._stopped.wait())
        await asyncio.wait({waiter, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, stopped):
            task.cancel()
        await self.stop()

    async def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("stopping", extra={"grace_seconds": self.config.grace_seconds})
        for task in [t for t in (self._readiness, *self._background) if t is not None]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._health.enter_graceful_shutdown()
        for service in self.services:
            service.stopping()
        await self._server.stop(self.config.grace_seconds)
        await _let_call_tasks_finish()
        self.metrics.stop()
        log.info("stopped")

    async def _watch_readiness(self) -> None:
        while True:
            await asyncio.sleep(self.config.readiness_interval_seconds)
            await self._check_readiness()

    async def _check_readiness(self) -> None:
        overall = True
        for service in self.services:
            try:
                ready = await service.ready()
            except Exception:  # a failing check means not ready, never a dead server
                log.exception("readiness check failed", extra={"service": service.name})
                ready = False
            overall = overall and ready
            await self._health.set(service.name, _status(ready))
        await self._health.set("", _status(overall))


async def _let_call_tasks_finish() -> None:
    """Wait (bounded) for grpc's own per-call tasks, so a clean stop logs no traceback."""
    calls = [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__name__", "") in _GRPC_CALL_TASKS
    ]
    if calls:
        await asyncio.wait(calls, timeout=_CALL_TASKS_BOUND_S)


def _status(ready: bool) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    if ready:
        return health_pb2.HealthCheckResponse.SERVING
    return health_pb2.HealthCheckResponse.NOT_SERVING
