"""Calling OFA Fleet services from Python: channels, bearer metadata, deadlines, errors.

gRPC sets no deadline by default, so a call to a hung server would wait forever; the
typed clients (`registry_client`, `delivery_client`) give every call one. A failed call
goes through an `ErrorTranslation`: for a person, a `RemoteCallError` whose message names
the service, the status and the server's own explanation (`remote_errors`); for a
service calling another, that service's own error (`upstream_errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc import aio

from ofa_fleet.contract.error_details import ErrorDetails
from ofa_fleet.contract.error_details import decode as decode_details
from ofa_fleet.errors import (
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    OfaFleetError,
    OutOfRangeError,
    RemoteCallError,
    UnavailableError,
)
from ofa_fleet.serving.channel_options import CLIENT_OPTIONS
from ofa_fleet.serving.tls import TlsFiles, channel_credentials

# What a client raises for a failed call: given the gRPC error and what was asked for.
ErrorTranslation = Callable[[grpc.RpcError, str], Exception]


def open_channel(address: str, tls: TlsFiles | None = None) -> grpc.Channel:
    if tls is not None and tls.enabled:
        return grpc.secure_channel(address, channel_credentials(tls), options=CLIENT_OPTIONS)
    return grpc.insecure_channel(address, options=CLIENT_OPTIONS)


def open_aio_channel(
    address: str,
    tls: TlsFiles | None = None,
    extra_options: Sequence[tuple[str, Any]] = (),
) -> aio.Channel:
    """The asyncio channel a service uses to call another service (``extra_options``: a
    client's own, such as gRPC's retry policy)."""
    options = (*CLIENT_OPTIONS, *extra_options)
    if tls is not None and tls.enabled:
        return aio.secure_channel(address, channel_credentials(tls), options=options)
    return aio.insecure_channel(address, options=options)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def remote_error(service: str, address: str, error: grpc.RpcError) -> RemoteCallError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    if code is grpc.StatusCode.UNAVAILABLE:
        message = f"cannot reach the {service} at {address}: {details}"
    elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
        message = f"the {service} at {address} did not answer in time"
    else:
        message = f"{service} at {address}: {details} ({code.name})"
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    said = decode_details(trailing) or ErrorDetails("")
    facts = {**said.facts, "field": said.field_path} if said.field_path else said.facts
    return RemoteCallError(
        message,
        code.name,
        reason=said.reason,
        facts=facts,
        retry_after_seconds=said.retry_after_seconds,
    )


def upstream_error(error: grpc.RpcError, what: str, address: str) -> OfaFleetError:
    """A failed call one service made to another, as this service's own error.

    What the caller got wrong stays the caller's: NOT_FOUND, INVALID_ARGUMENT,
    OUT_OF_RANGE, FAILED_PRECONDITION and ABORTED pass through with the other service's
    words, reason and facts (asking again will not help). Anything else is UNAVAILABLE,
    which tells the caller to retry.
    """
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    if code is grpc.StatusCode.NOT_FOUND:
        return NotFoundError(f"{what} does not exist (according to {address})")
    caller_fault = _CALLER_FAULTS.get(code)
    if caller_fault is not None:
        trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
        said = decode_details(trailing) or ErrorDetails("")
        return caller_fault(
            f"{what}: {details} (according to {address})",
            reason=said.reason if said.reason != code.name else "",
            facts=said.facts,
            field=said.field_path,
        )
    return UnavailableError(f"cannot read {what} from {address}: {details} ({code.name}); retry")


_CALLER_FAULTS: dict[grpc.StatusCode, type[OfaFleetError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: ConflictError,
}


def upstream_errors(where: str) -> ErrorTranslation:
    """Failed calls as the calling service's own errors (`upstream_error`)."""
    return lambda error, what: upstream_error(error, what, where)


def remote_errors(service: str, address: str) -> ErrorTranslation:
    """Failed calls as a person reads them, with the remote's own status (`remote_error`)."""
    return lambda error, _what: remote_error(service, address, error)
