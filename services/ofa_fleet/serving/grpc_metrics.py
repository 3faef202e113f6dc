"""The standard gRPC server metrics, under the names operators' dashboards already use.

go-grpc-prometheus defined them and PyPI's `py-grpc-prometheus` copies them, but the
latter has no `grpc.aio` interceptor (its asyncio support is an open issue with an
unmerged pull request since 2022), so the shared interceptor feeds these instead:

- ``grpc_server_started_total`` when a call is admitted to its method's wrapper;
- ``grpc_server_handled_total{grpc_code}`` and the ``grpc_server_handling_seconds``
  histogram when it ends, whatever the outcome;
- ``grpc_server_msg_sent_total`` per streamed response (unary answers count one).

Labels are ``grpc_type`` (unary, server_stream), ``grpc_service`` and ``grpc_method``:
bounded by the protos, never by callers. Health and reflection are not counted: probes
every few seconds would swamp the methods people watch.
"""

from __future__ import annotations

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

# go-grpc-prometheus' default buckets stop at 10 s; ReadModel streams and Specialize calls
# run for minutes, so the tail goes on to 10 minutes.
HANDLING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
LABELS = ("grpc_type", "grpc_service", "grpc_method")


class GrpcServerMetrics:
    """One server's gRPC call metrics, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._started = Counter(
            "grpc_server_started_total",
            "RPCs started on the server.",
            LABELS,
            registry=registry,
        )
        self._handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, whatever their status.",
            (*LABELS, "grpc_code"),
            registry=registry,
        )
        self._seconds = Histogram(
            "grpc_server_handling_seconds",
            "Seconds from an RPC's start to its end, as the server saw it.",
            LABELS,
            buckets=HANDLING_BUCKETS,
            registry=registry,
        )
        self._sent = Counter(
            "grpc_server_msg_sent_total",
            "Messages the server sent (each response of a stream).",
            LABELS,
            registry=registry,
        )

    def for_method(self, method: str, kind: str) -> MethodMetrics:
        """The children of one method's series, looked up once instead of per call: a
        ``labels()`` lookup takes a lock and checks every value, which on the cheapest
        calls cost more than the call's own work."""
        return MethodMetrics(self, kind, *_split(method))


class MethodMetrics:
    """One method's series, bound to their labels; `handled` binds a code when first seen."""

    def __init__(self, owner: GrpcServerMetrics, kind: str, service: str, name: str) -> None:
        self._labels = (kind, service, name)
        self._handled_family = owner._handled
        self._started = owner._started.labels(*self._labels)
        self._sent = owner._sent.labels(*self._labels)
        self._seconds = owner._seconds.labels(*self._labels)
        self._handled: dict[grpc.StatusCode, Counter] = {}

    def started(self) -> None:
        self._started.inc()

    def sent(self) -> None:
        self._sent.inc()

    def handled(self, code: grpc.StatusCode, seconds: float) -> None:
        counter = self._handled.get(code)
        if counter is None:  # at most one per status code
            counter = self._handled[code] = self._handled_family.labels(*self._labels, code.name)
        counter.inc()
        self._seconds.observe(seconds)


def _split(method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` as (``pkg.Service``, ``Method``)."""
    service, _, name = method.lstrip("/").partition("/")
    return service, name
