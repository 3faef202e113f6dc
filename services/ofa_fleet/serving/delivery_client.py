"""Delivery's operator side as a program calls it: typed, one deadline, whole listings.

Methods take profile and fleet ids and send their resource names.

The CLI's `models` and `carbon` commands, `status` and the demo read and steer delivery
through this one client, with the operator token; a failed call goes through the
caller's `ErrorTranslation` (for an operator: `remote_errors`, delivery's own status).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2
from grpc import aio

from ofa_fleet.contract.resource_names import ANY, fleet_name, profile_name
from ofa_fleet.serving.client import ErrorTranslation, bearer
from ofa_fleet.v1 import delivery_pb2, delivery_pb2_grpc

DELIVERY_DEADLINE_SECONDS = 10.0
PAGE_SIZE = 1000
# One WaitOperation call waits at most this long (delivery's own limit is longer).
WAIT_SLICE_SECONDS = 30.0


class DeliveryClient:
    """Async operator calls to delivery, and to the operations it serves beside it."""

    def __init__(
        self,
        channel: aio.Channel,
        token: str,
        *,
        errors: ErrorTranslation,
        deadline_seconds: float = DELIVERY_DEADLINE_SECONDS,
    ) -> None:
        self.stub = delivery_pb2_grpc.DeliveryServiceStub(channel)
        self.operations = operations_pb2_grpc.OperationsStub(channel)
        self.token = token
        self.deadline_seconds = deadline_seconds
        self.errors = errors

    async def list_models(self, profile: str = "") -> list[delivery_pb2.StoredModel]:
        """Every stored model (of ``profile`` when given)."""
        models: list[delivery_pb2.StoredModel] = []
        token = ""
        while True:
            request = delivery_pb2.ListModelsRequest(
                parent=profile_name(profile or ANY), page_size=PAGE_SIZE, page_token=token
            )
            page = await self._call(self.stub.ListModels, request, "the models")
            models += page.models
            token = page.next_page_token
            if not token:
                return models

    async def profile_models(
        self, profile: str, history_limit: int = 0
    ) -> delivery_pb2.GetProfileModelsResponse:
        """The profile's current model, specialization state, rollouts and its newest
        `history_limit` history entries (0: the server's default page)."""
        request = delivery_pb2.GetProfileModelsRequest(
            name=profile_name(profile), history_page_size=history_limit
        )
        answer: delivery_pb2.GetProfileModelsResponse = await self._call(
            self.stub.GetProfileModels, request, f"profile {profile!r}"
        )
        return answer

    async def pin_fleet(
        self, fleet: str, sha256: str = "", rollback: bool = False
    ) -> delivery_pb2.PinFleetResponse:
        """Pin ``fleet`` to a model (``sha256``, or the one before: ``rollback``), or unpin it."""
        request = delivery_pb2.PinFleetRequest(
            fleet=fleet_name(fleet), sha256=sha256, rollback=rollback
        )
        answer: delivery_pb2.PinFleetResponse = await self._call(
            self.stub.PinFleet, request, f"fleet {fleet!r}"
        )
        return answer

    async def respecialize(self, profile: str) -> operations_pb2.Operation:
        """Ask for a new model for ``profile`` now; the operation to follow (by name)."""
        request = delivery_pb2.RespecializeRequest(name=profile_name(profile))
        answer: operations_pb2.Operation = await self._call(
            self.stub.Respecialize, request, f"profile {profile!r}"
        )
        return answer

    async def operation(self, name: str) -> operations_pb2.Operation:
        request = operations_pb2.GetOperationRequest(name=name)
        answer: operations_pb2.Operation = await self._call(
            self.operations.GetOperation, request, f"operation {name!r}"
        )
        return answer

    async def wait_operation(self, name: str, seconds: float) -> operations_pb2.Operation:
        """The operation once done, or as it stands after ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            left = max(0.0, min(WAIT_SLICE_SECONDS, deadline - time.monotonic()))
            timeout = duration_pb2.Duration()
            timeout.FromNanoseconds(round(left * 1e9))
            request = operations_pb2.WaitOperationRequest(name=name, timeout=timeout)
            answer: operations_pb2.Operation = await self._call(
                self.operations.WaitOperation,
                request,
                f"operation {name!r}",
                deadline_seconds=left + self.deadline_seconds,
            )
            if answer.done or time.monotonic() >= deadline:
                return answer

    async def list_operations(self, filter_text: str = "") -> list[operations_pb2.Operation]:
        """Every operation delivery holds (that matches ``filter_text``), oldest first."""
        found: list[operations_pb2.Operation] = []
        token = ""
        while True:
            request = operations_pb2.ListOperationsRequest(
                name="operations", filter=filter_text, page_size=PAGE_SIZE, page_token=token
            )
            page = await self._call(self.operations.ListOperations, request, "the operations")
            found += page.operations
            token = page.next_page_token
            if not token:
                return found

    async def cancel_operation(self, name: str) -> None:
        request = operations_pb2.CancelOperationRequest(name=name)
        await self._call(self.operations.CancelOperation, request, f"operation {name!r}")

    async def carbon_ledger(
        self, fleet: str = "", page_size: int = PAGE_SIZE
    ) -> delivery_pb2.GetCarbonLedgerResponse:
        """The ledger of training once against one network per profile (a fleet's share),
        every page's profile and fleet rows gathered into one answer."""
        answer: delivery_pb2.GetCarbonLedgerResponse | None = None
        token = ""
        while True:
            request = delivery_pb2.GetCarbonLedgerRequest(
                fleet=fleet_name(fleet) if fleet else "", page_size=page_size, page_token=token
            )
            page: delivery_pb2.GetCarbonLedgerResponse = await self._call(
                self.stub.GetCarbonLedger, request, "the carbon ledger"
            )
            if answer is None:
                answer = page
            else:
                answer.profiles.extend(page.profiles)
                answer.fleets.extend(page.fleets)
            token = page.next_page_token
            if not token:
                answer.next_page_token = ""
                return answer

    async def _call(
        self,
        method: Callable[..., Awaitable[Any]],
        request: object,
        what: str,
        deadline_seconds: float | None = None,
    ) -> Any:
        timeout = self.deadline_seconds if deadline_seconds is None else deadline_seconds
        try:
            return await method(request, metadata=bearer(self.token), timeout=timeout)
        except aio.AioRpcError as error:
            raise self.errors(error, what) from None
