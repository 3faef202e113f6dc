"""Our errors' gRPC status codes: the most specific kind wins (a deadline that stopped the
work is DEADLINE_EXCEEDED, though it is a cancellation too)."""

from __future__ import annotations

import grpc
import pytest

from ofa_fleet import errors
from ofa_fleet.serving.status_codes import status_code_for


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.DeadlineExceededError("late"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (errors.CancelledError("gone"), grpc.StatusCode.CANCELLED),
        (errors.InfeasibleProfileError("no fit"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.OutOfRangeError("far"), grpc.StatusCode.OUT_OF_RANGE),
        (errors.InvalidArgumentError("bad"), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_each_error_kind_has_its_code(error: errors.OfaFleetError, code: grpc.StatusCode) -> None:
    assert status_code_for(error) is code
