"""One hierarchy of domain errors for the whole project.

Every layer raises these; the CLI prints their message as one line and the gRPC layer
(later) maps each class to one status code in one place. A message must say what was
wrong and what would be accepted, so that a person can act on it without a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping


class OfaFleetError(Exception):
    """Base of every error a user can cause and fix.

    Besides its message, an error may carry what a program needs to act on it (AIP-193):
    a ``reason`` (an UPPER_SNAKE_CASE constant documented with the call), ``facts`` about
    it (string keys and values, such as the current revision), for what is worth
    asking again ``retry_after_seconds``, and for a bad request the ``field`` at fault.
    The gRPC layer sends them as google.rpc ErrorInfo, RetryInfo and BadRequest details
    (and PreconditionFailure for FAILED_PRECONDITION).
    """

    def __init__(
        self,
        message: str = "",
        *,
        reason: str = "",
        facts: Mapping[str, str] | None = None,
        retry_after_seconds: float | None = None,
        field: str = "",
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.facts = dict(facts or {})
        self.retry_after_seconds = retry_after_seconds
        self.field = field  # the request field at fault, as a dotted path, when one is


class InvalidArgumentError(OfaFleetError, ValueError):
    """A value given by the caller is malformed or outside what is allowed."""


class OutOfRangeError(InvalidArgumentError):
    """A position (cursor, offset) lies beyond what exists."""


class InvalidArchError(InvalidArgumentError):
    """An architecture config does not belong to the search space."""


class NotFoundError(OfaFleetError):
    """A named file, record or object does not exist."""


class DataError(OfaFleetError):
    """A dataset is missing, empty or holds a file that cannot be read."""


class CheckpointError(OfaFleetError):
    """A checkpoint is missing, corrupt or belongs to another search space."""


class ExportError(OfaFleetError):
    """An exported model failed its checks (ONNX checker or runtime parity)."""


class AlreadyExistsError(OfaFleetError):
    """A record with that name already exists."""


class FailedPreconditionError(OfaFleetError):
    """The request is valid but the system is not in a state to carry it out."""


class InfeasibleProfileError(FailedPreconditionError):
    """No subnet of the search space meets a profile's budget; the message says how close
    the space can come, so an operator can relax the budget or train a smaller space.
    Its reason, PROFILE_INFEASIBLE, tells a caller that asking again cannot help until
    the profile or the supernet changes."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message, reason=PROFILE_INFEASIBLE)


PROFILE_INFEASIBLE = "PROFILE_INFEASIBLE"


class IntegrityError(OfaFleetError):
    """Bytes do not match their digest or a signature does not verify: never install them."""


class CancelledError(OfaFleetError):
    """The caller went away or its deadline passed; the work was stopped, not finished."""


class DeadlineExceededError(CancelledError):
    """The work was stopped because the call's deadline passed: the caller is told so
    (DEADLINE_EXCEEDED), whichever side noticed the deadline first."""


class ConflictError(OfaFleetError):
    """Someone else changed the record first (an expected revision no longer holds)."""


class UnauthenticatedError(OfaFleetError):
    """The call carries no credentials, or credentials nobody issued."""


class PermissionDeniedError(OfaFleetError):
    """The caller is known but may not make this call, or not on this record."""


class UnavailableError(OfaFleetError):
    """A dependency (database, another service) cannot be reached right now; retry later."""


class RemoteCallError(OfaFleetError):
    """A call to an OFA Fleet service failed; `code` is the gRPC status code's name."""

    def __init__(
        self,
        message: str,
        code: str,
        *,
        reason: str = "",
        facts: Mapping[str, str] | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(
            message, reason=reason, facts=facts, retry_after_seconds=retry_after_seconds
        )
        self.code = code

    def __str__(self) -> str:
        """The message, then the server's reason and facts where it named more than the
        status code: ``[REVISION_MISMATCH current_revision=3 expected_revision=2]``."""
        message = super().__str__()
        if not self.reason or self.reason == self.code:
            return message
        facts = "".join(f" {key}={value}" for key, value in sorted(self.facts.items()))
        return f"{message} [{self.reason}{facts}]"


class ProblemsFoundError(OfaFleetError):
    """A check ran and found something wrong (`ofa-fleet status`): its output is still
    printed, and the command exits with its own code so that scripts can tell."""
