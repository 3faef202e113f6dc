"""The one place domain errors become gRPC status codes.

A servicer raises the project's own errors; the interceptor looks the class up here. An
error outside the hierarchy is a bug and becomes INTERNAL, with its details in the log only.
"""

from __future__ import annotations

import grpc

from ofa_fleet import errors

_CODES: tuple[tuple[type[errors.OfaFleetError], grpc.StatusCode], ...] = (
    (errors.OutOfRangeError, grpc.StatusCode.OUT_OF_RANGE),
    (errors.InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ConflictError, grpc.StatusCode.ABORTED),
    (errors.UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (errors.UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (errors.DeadlineExceededError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.CancelledError, grpc.StatusCode.CANCELLED),
    (errors.IntegrityError, grpc.StatusCode.DATA_LOSS),
    (errors.DataError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.CheckpointError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ExportError, grpc.StatusCode.INTERNAL),
)


def status_code_for(error: errors.OfaFleetError) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.UNKNOWN
