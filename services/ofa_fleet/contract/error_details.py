"""What an error says to a program, beside its message: google.rpc details (AIP-193).

Servers attach a `google.rpc.Status` with an ErrorInfo (reason, domain, facts) to every
error a client can cause or wait out; for errors worth retrying, a RetryInfo (how long to
wait); for a bad request that names its field, a BadRequest field violation; for a
FAILED_PRECONDITION, a PreconditionFailure (its type is the reason). Clients (the agent,
the CLI) read them back here. The encoding is gRPC's own
(`grpc-status-details-bin` trailing metadata), so any gRPC client can read them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

# InfeasibleProfileError's own reason, named here with the rest.
from ofa_fleet.errors import PROFILE_INFEASIBLE as PROFILE_INFEASIBLE

DOMAIN = "ofa-fleet"
DETAILS_KEY = "grpc-status-details-bin"
# Bounds on what crosses the wire: a fact is a short key and a short value.
MAX_FACTS = 16
MAX_FACT_CHARS = 256
# A server asks a client to wait at least this long, at most an hour.
MAX_RETRY_SECONDS = 3600.0
MAX_DESCRIPTION_CHARS = 1000
FAILED_PRECONDITION = 9  # google.rpc.Code
# Reasons a client acts on by name (the README lists every reason and its facts).
MODEL_NOT_READY = "MODEL_NOT_READY"
CURSOR_EXPIRED = "CURSOR_EXPIRED"


@dataclass(frozen=True)
class ErrorDetails:
    """The ErrorInfo and RetryInfo of one error."""

    reason: str
    facts: Mapping[str, str] = field(default_factory=dict)
    retry_after_seconds: float | None = None
    field_path: str = ""  # the request field at fault (BadRequest), as a dotted path


def encode(code: int, message: str, details: ErrorDetails) -> bytes:
    """The serialized google.rpc.Status for the trailing metadata of an error."""
    return status(code, message, details).SerializeToString()


def status(code: int, message: str, details: ErrorDetails) -> status_pb2.Status:
    """The google.rpc.Status of an error: what a call's trailing metadata carries, and what
    a long-running operation that failed holds as its `error`."""
    info = error_details_pb2.ErrorInfo(reason=details.reason, domain=DOMAIN)
    for key, value in list(details.facts.items())[:MAX_FACTS]:
        info.metadata[key[:MAX_FACT_CHARS]] = value[:MAX_FACT_CHARS]
    packed = [_packed(info)]
    if details.retry_after_seconds is not None:
        seconds = min(max(details.retry_after_seconds, 0.0), MAX_RETRY_SECONDS)
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(seconds * 1e9))
        packed.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    description = message[:MAX_DESCRIPTION_CHARS]
    if details.field_path:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=details.field_path[:MAX_FACT_CHARS], description=description
        )
        packed.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
    if code == FAILED_PRECONDITION:
        failure = error_details_pb2.PreconditionFailure.Violation(
            type=details.reason, description=description
        )
        packed.append(_packed(error_details_pb2.PreconditionFailure(violations=[failure])))
    return status_pb2.Status(code=code, message=message, details=packed)


def decode(trailing_metadata: Iterable[Any] | None) -> ErrorDetails | None:
    """The details a server attached to an error, from its trailing metadata ((key, value)
    pairs); None when it attached none, or none that parse: details are advice, never a
    reason to fail."""
    raw = next((v for k, v in (trailing_metadata or ()) if k == DETAILS_KEY), None)
    if not isinstance(raw, bytes):
        return None
    try:
        found_status = status_pb2.Status.FromString(raw)
    except Exception:  # a malformed detail from some proxy: ignore it
        return None
    return from_status(found_status)


def from_status(status: status_pb2.Status) -> ErrorDetails | None:
    """The details of a google.rpc.Status (a failed operation's error, or a call's); None
    when it holds none that parse."""
    info = error_details_pb2.ErrorInfo()
    retry = error_details_pb2.RetryInfo()
    bad = error_details_pb2.BadRequest()
    found = None
    delay = None
    at_fault = ""
    for detail in status.details:
        if detail.Is(info.DESCRIPTOR):
            detail.Unpack(info)
            found = info
        elif detail.Is(retry.DESCRIPTOR):
            detail.Unpack(retry)
            delay = min(max(retry.retry_delay.ToNanoseconds() / 1e9, 0.0), MAX_RETRY_SECONDS)
        elif detail.Is(bad.DESCRIPTOR):
            detail.Unpack(bad)
            at_fault = bad.field_violations[0].field if bad.field_violations else ""
    if found is None and delay is None and not at_fault:
        return None
    reason = found.reason if found is not None else ""
    facts = dict(found.metadata) if found is not None else {}
    return ErrorDetails(reason, facts, delay, at_fault)


def _packed(message: Message) -> any_pb2.Any:
    holder = any_pb2.Any()
    holder.Pack(message)
    return holder
