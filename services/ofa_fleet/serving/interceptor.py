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

Every call's line is at INFO except a device's or an enrolment's call that succeeded,
which is at DEBUG: those are the fleet's heartbeats and downloads, thousands a minute
that say only "still fine", and at INFO their lines cost more CPU than the interceptor's
every other check together (``bench/interceptor_overhead.py``). An operator's calls
(the audit trail) and every failure, whoever called, stay at INFO.
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
    Role,
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
# Whose successful calls are logged at DEBUG, not INFO (see the module docstring).
QUIET_ROLES = frozenset({Role.DEVICE, Role.ENROLMENT})


class CallInterceptor(aio.ServerInterceptor):
    """See the module docstring. `metrics`, when given, counts and times every call.

    A method's wrapped handler is built on its first call and kept: the methods are the
    server's own (an unknown one has no handler), so there is no reason to build closures,
    a handler and four lock-taking metric lookups again on every call.
    """

    def __init__(
        self,
        rules: Mapping[str, AccessRule],
        authenticator: Authenticator,
        metrics: GrpcServerMetrics | None = None,
    ) -> None:
        self._rules = dict(rules)
        self._authenticator = authenticator
        self._metrics = metrics
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if method.lstrip("/").split("/")[0] in PUBLIC_SERVICES:
            return handler
        parse = _tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            calls = _MethodCalls(self, method, "unary")
            return grpc.unary_unary_rpc_method_handler(
                calls.unary(cast(Any, handler.unary_unary)),
                request_deserializer=parse,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            calls = _MethodCalls(self, method, "server_stream")
            return grpc.unary_stream_rpc_method_handler(
                calls.stream(cast(Any, handler.unary_stream)),
                request_deserializer=parse,
                response_serializer=handler.response_serializer,
            )
        raise TypeError(f"{method}: client-streaming methods are not supported by the stack")


class _Outcome:
    """What one call's log line and metrics need to know once it ends."""

    __slots__ = ("code", "peer", "principal", "started")

    def __init__(self, peer: str) -> None:
        self.started = time.perf_counter()
        # Read now: once a client has gone, asking the call's context anything may crash
        # the process (gRPC's core has freed the call), and `finish` runs after that.
        self.peer = peer
        self.principal: Principal | None = None
        self.code = grpc.StatusCode.OK


class _MethodCalls:
    """One method's checks and bookkeeping, shared by every call of it."""

    def __init__(self, owner: CallInterceptor, method: str, kind: str) -> None:
        self.method = method
        self.authenticator = owner._authenticator
        self.rule = owner._rules.get(method)
        self.metrics = owner._metrics.for_method(method, kind) if owner._metrics else None

    async def admit(self, request: object, context: aio.ServicerContext) -> Principal:
        if isinstance(request, Malformed):
            raise InvalidArgumentError(
                f"the request is not a valid message for {self.method} ({request.problem})"
            )
        if self.rule is None:
            raise PermissionDeniedError(f"{self.method} has no access rule; nobody may call it")
        token = bearer_token(context.invocation_metadata())
        principal = await self.authenticator.authenticate(token)
        if principal is None:
            kind = token_role(token)
            if kind is not None and kind not in self.rule.roles:
                # A kind of token this call never takes: say so, whether or not it is valid.
                authorize(self.method, self.rule, Principal(kind), request)
            raise UnauthenticatedError(
                "the bearer token is not one this system issued (or it was revoked)"
            )
        authorize(self.method, self.rule, principal, request)
        set_current_principal(principal)
        return principal

    def unary(self, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def wrapped(request: object, context: aio.ServicerContext) -> Any:
            outcome = self.start(context)
            try:
                outcome.principal = await self.admit(request, context)
                response = await behavior(request, context)
                if self.metrics is not None:
                    self.metrics.sent()
                return response
            except BaseException as error:  # classified in fail(), then re-raised
                await self.fail(error, context, outcome)
                raise
            finally:
                self.finish(outcome)

        return wrapped

    def stream(self, behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
        async def wrapped(request: object, context: aio.ServicerContext) -> AsyncIterator[Any]:
            outcome = self.start(context)
            try:
                outcome.principal = await self.admit(request, context)
                async for response in behavior(request, context):
                    if self.metrics is not None:
                        self.metrics.sent()
                    yield response
            except BaseException as error:  # classified in fail(), then re-raised
                await self.fail(error, context, outcome)
                raise
            finally:
                self.finish(outcome)

        return wrapped

    def start(self, context: aio.ServicerContext) -> _Outcome:
        if self.metrics is not None:
            self.metrics.started()
        return _Outcome(context.peer())

    async def fail(
        self, error: BaseException, context: aio.ServicerContext, outcome: _Outcome
    ) -> None:
        """Abort with the status `error` stands for, noting the code for the log.

        The context is touched only while the call is alive: once a client has cancelled
        (CancelledError, or GeneratorExit for a stream), asking it anything may crash.
        """
        if isinstance(error, aio.AbortError):
            return
        if isinstance(error, asyncio.CancelledError | GeneratorExit):
            outcome.code = grpc.StatusCode.CANCELLED
            return
        if isinstance(error, OfaFleetError):
            outcome.code = code = status_code_for(error)
            message = bounded(str(error))
            details = ErrorDetails(
                error.reason or code.name,
                error.facts,
                error.retry_after_seconds,
                error.field,
            )
            encoded = encode_details(code.value[0], message, details)
            await context.abort(code, message, trailing_metadata=((DETAILS_KEY, encoded),))
        incident = uuid.uuid4().hex[:12]
        log.exception("unexpected error", extra={"method": self.method, "incident": incident})
        outcome.code = grpc.StatusCode.INTERNAL
        await context.abort(
            outcome.code, f"internal error (incident {incident}); the server log has the details"
        )

    def finish(self, outcome: _Outcome) -> None:
        seconds = time.perf_counter() - outcome.started
        set_current_principal(None)
        principal = outcome.principal
        level = logging.INFO
        if outcome.code is grpc.StatusCode.OK and principal and principal.role in QUIET_ROLES:
            level = logging.DEBUG
        if log.isEnabledFor(level):  # the line costs far more than the check
            log.log(
                level,
                "call",
                extra={
                    "method": self.method,
                    "code": outcome.code.name,
                    "ms": round(seconds * 1000, 3),
                    "principal": principal.describe() if principal else "",
                    "peer": outcome.peer,
                },
            )
        if self.metrics is not None:
            self.metrics.handled(outcome.code, seconds)


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
