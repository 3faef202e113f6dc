"""The interceptor every server runs: authenticate, authorize, map errors, log each call.

It wraps each method's behaviour rather than answering for it, so it sees the request (a
device may only name itself) and whatever the servicer raises. Health and reflection are
public, as probes and grpcurl expect. A method with no access rule is refused: forgetting
a rule must fail closed.

It also wraps each method's request parser. Bytes that are no valid message (garbage, a
string field holding invalid UTF-8) would otherwise fail inside gRPC, before any of this
runs: UNKNOWN for the client and a traceback in the log for every such call, which anyone
who reaches the port could use to fill the logs. Parsed here, they become one
INVALID_ARGUMENT and the call's one log line, before the token is even looked at.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

import grpc
from grpc import aio

from ofa_fleet.contract.error_details import DETAILS_KEY, ErrorDetails
from ofa_fleet.contract.error_details import encode as encode_details
from ofa_fleet.errors import (
    InvalidArgumentError,
    OfaFleetError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from ofa_fleet.serving.access import (
    PUBLIC_SERVICES,
    AccessRule,
    Authenticator,
    Principal,
    authorize,
    bearer_token,
    set_current_principal,
    token_role,
)
from ofa_fleet.serving.grpc_metrics import GrpcServerMetrics
from ofa_fleet.serving.status_codes import status_code_for

log = logging.getLogger("ofa_fleet.access")
# Status details travel in HTTP/2 trailers, which clients cap at 8 KiB by default; a message
# quoting a huge field would turn a clear INVALID_ARGUMENT into an opaque transport error.
MAX_DETAILS_CHARS = 2000


class CallInterceptor(aio.ServerInterceptor):
    """See the module docstring. `metrics`, when given, counts and times every call."""

    def __init__(
        self,
        rules: Mapping[str, AccessRule],
        authenticator: Authenticator,
        metrics: GrpcServerMetrics | None = None,
    ) -> None:
        self._rules = dict(rules)
        self._authenticator = authenticator
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.lstrip("/").split("/")[0] in PUBLIC_SERVICES:
            return handler
        metadata = tuple(handler_call_details.invocation_metadata or ())
        parse = _tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            call = _Call(self, method, "unary", self._rules.get(method), metadata)
            return grpc.unary_unary_rpc_method_handler(
                call.unary(cast(Any, handler.unary_unary)),
                request_deserializer=parse,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            call = _Call(self, method, "server_stream", self._rules.get(method), metadata)
            return grpc.unary_stream_rpc_method_handler(
                call.stream(cast(Any, handler.unary_stream)),
                request_deserializer=parse,
                response_serializer=handler.response_serializer,
            )
        raise TypeError(f"{method}: client-streaming methods are not supported by the stack")


class _Call:
    """One call's checks and bookkeeping, shared by the unary and streaming wrappers."""

    def __init__(
        self,
        owner: CallInterceptor,
        method: str,
        kind: str,
        rule: AccessRule | None,
        metadata: tuple[tuple[str, Any], ...],
    ) -> None:
        self.owner = owner
        self.method = method
        self.kind = kind
        self.metrics = owner._metrics
        self.rule = rule
        self.metadata = metadata
        self.principal: Principal | None = None
        self.code = grpc.StatusCode.OK

    async def admit(self, request: object) -> None:
        if isinstance(request, Malformed):
            raise InvalidArgumentError(
                f"the request is not a valid message for {self.method} ({request.problem})"
            )
        if self.rule is None:
            raise PermissionDeniedError(f"{self.method} has no access rule; nobody may call it")
        token = bearer_token(self.metadata)
        principal = await self.owner._authenticator.authenticate(token)
        if principal is None:
            kind = token_role(token)
            if kind is not None and kind not in self.rule.roles:
                # A kind of token this call never takes: say so, whether or not it is valid.
                authorize(self.method, self.rule, Principal(kind), request)
            raise UnauthenticatedError(
                "the bearer token is not one this system issued (or it was revoked)"
            )
        authorize(self.method, self.rule, principal, request)
        self.principal = principal
        set_current_principal(principal)

    def unary(self, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def wrapped(request: object, context: aio.ServicerContext) -> Any:
            started, peer = self.start(context)
            try:
                await self.admit(request)
                response = await behavior(request, context)
                if self.metrics is not None:
                    self.metrics.sent(self.method, self.kind)
                return response
            except BaseException as error:  # classified in fail(), then re-raised
                await self.fail(error, context)
                raise
            finally:
                self.finish(started, peer)

        return wrapped

    def stream(self, behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
        async def wrapped(request: object, context: aio.ServicerContext) -> AsyncIterator[Any]:
            started, peer = self.start(context)
            try:
                await self.admit(request)
                async for response in behavior(request, context):
                    if self.metrics is not None:
                        self.metrics.sent(self.method, self.kind)
                    yield response
            except BaseException as error:  # classified in fail(), then re-raised
                await self.fail(error, context)
                raise
            finally:
                self.finish(started, peer)

        return wrapped

    def start(self, context: aio.ServicerContext) -> tuple[float, str]:
        if self.metrics is not None:
            self.metrics.started(self.method, self.kind)
        return time.perf_counter(), context.peer()

    async def fail(self, error: BaseException, context: aio.ServicerContext) -> None:
        """Abort with the status `error` stands for, remembering the code for the log.

        The context is touched only while the call is alive: once a client has cancelled
        (CancelledError, or GeneratorExit for a stream), asking it anything may crash.
        """
        if isinstance(error, aio.AbortError):
            return
        if isinstance(error, asyncio.CancelledError | GeneratorExit):
            self.code = grpc.StatusCode.CANCELLED
            return
        if isinstance(error, OfaFleetError):
            self.code = status_code_for(error)
            message = bounded(str(error))
            details = ErrorDetails(
                error.reason or self.code.name,
                error.facts,
                error.retry_after_seconds,
                error.field,
            )
            encoded = encode_details(self.code.value[0], message, details)
            await context.abort(self.code, message, trailing_metadata=((DETAILS_KEY, encoded),))
        incident = uuid.uuid4().hex[:12]
        log.exception("unexpected error", extra={"method": self.method, "incident": incident})
        self.code = grpc.StatusCode.INTERNAL
        await context.abort(
            self.code, f"internal error (incident {incident}); the server log has the details"
        )

    def finish(self, started: float, peer: str) -> None:
        seconds = time.perf_counter() - started
        set_current_principal(None)
        log.info(
            "call",
            extra={
                "method": self.method,
                "code": self.code.name,
                "ms": round(seconds * 1000, 3),
                "principal": self.principal.describe() if self.principal else "",
                "peer": peer,
            },
        )
        if self.metrics is not None:
            self.metrics.handled(self.method, self.kind, self.code, seconds)


class Malformed:
    """What a request that did not parse becomes, so that `admit` can refuse it."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _tolerant(parse: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`parse`, with a failure turned into `Malformed` instead of raised inside gRPC."""
    if parse is None:
        return None

    def tolerant(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as error:  # DecodeError, or whatever a parser raises on garbage
            return Malformed(f"{type(error).__name__}: {bounded(str(error))[:200]}")

    return tolerant


def bounded(message: str) -> str:
    """`message`, cut to `MAX_DETAILS_CHARS` with a note when it was longer."""
    if len(message) <= MAX_DETAILS_CHARS:
        return message
    return message[: MAX_DETAILS_CHARS - 40] + f"... ({len(message):,} characters, cut)"
