"""`google.longrunning.Operations` as delivery serves it: Respecialize's operations.

Every replica answers from the database (see `store.operations`), so a caller may follow
an operation on any replica, across restarts and leader changes. Waiting polls the
database rather than listening to the reconciler, because the replica that ends the
operation is usually not the one the caller waits on.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import empty_pb2
from google.rpc import status_pb2
from grpc import aio

from ofa_fleet.contract.error_details import ErrorDetails, status
from ofa_fleet.contract.operation_names import check_collection, check_operation_name
from ofa_fleet.delivery.serve import convert
from ofa_fleet.delivery.store.model_store import ModelRecord, ModelStore
from ofa_fleet.delivery.store.operations import (
    RETENTION_SECONDS,
    OperationFilter,
    OperationRecord,
    Operations,
)
from ofa_fleet.delivery.store.specializations import Specializations
from ofa_fleet.errors import InvalidArgumentError, NotFoundError
from ofa_fleet.serving.long_running import wait_seconds
from ofa_fleet.serving.timestamps import timestamp
from ofa_fleet.v1 import delivery_pb2

WAIT_POLL_SECONDS = 0.5
MAX_FILTER_CHARS = 256
_TERM = re.compile(r'^\s*(done|profile_name)\s*=\s*(true|false|"[a-z0-9-]{1,63}")\s*$')


class OperationsServicer(operations_pb2_grpc.OperationsServicer):
    def __init__(
        self,
        operations: Operations,
        ledger: Specializations,
        store: ModelStore,
        manifest: Callable[[ModelRecord], delivery_pb2.ModelManifest],
    ) -> None:
        self.operations = operations
        self.ledger = ledger
        self.store = store
        self.manifest = manifest

    async def GetOperation(  # noqa: N802
        self, request: operations_pb2.GetOperationRequest, context: aio.ServicerContext
    ) -> operations_pb2.Operation:
        return await self.answer(await self._record(request.name))

    async def ListOperations(  # noqa: N802
        self, request: operations_pb2.ListOperationsRequest, context: aio.ServicerContext
    ) -> operations_pb2.ListOperationsResponse:
        check_collection(request.name)
        which = parse_filter(request.filter)
        page = await asyncio.to_thread(
            self.operations.page, which, request.page_size, request.page_token
        )
        return operations_pb2.ListOperationsResponse(
            operations=[await self.answer(record) for record in page.items],
            next_page_token=page.next_token,
        )

    async def WaitOperation(  # noqa: N802
        self, request: operations_pb2.WaitOperationRequest, context: aio.ServicerContext
    ) -> operations_pb2.Operation:
        record = await self._record(request.name)
        timeout = request.timeout.ToNanoseconds() / 1e9 if request.HasField("timeout") else None
        wait = wait_seconds(timeout, context.time_remaining())
        deadline = time.monotonic() + wait
        while not record.done and time.monotonic() < deadline:
            await asyncio.sleep(min(WAIT_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            record = await self._record(request.name)
        return await self.answer(record)

    async def CancelOperation(  # noqa: N802
        self, request: operations_pb2.CancelOperationRequest, context: aio.ServicerContext
    ) -> empty_pb2.Empty:
        check_operation_name(request.name)
        if await asyncio.to_thread(self.operations.cancel, request.name) is None:
            raise _not_found(request.name)
        return empty_pb2.Empty()

    async def DeleteOperation(  # noqa: N802
        self, request: operations_pb2.DeleteOperationRequest, context: aio.ServicerContext
    ) -> empty_pb2.Empty:
        check_operation_name(request.name)
        if not await asyncio.to_thread(self.operations.delete, request.name):
            raise _not_found(request.name)
        return empty_pb2.Empty()

    async def answer(self, record: OperationRecord) -> operations_pb2.Operation:
        """The operation as a caller sees it: metadata from the profile's specialization
        state now; once done, the model it made current or its error."""
        operation = operations_pb2.Operation(name=record.name, done=record.done)
        operation.metadata.Pack(await self._metadata(record))
        if record.error_code:
            operation.error.CopyFrom(_error(record))
        elif record.outcome_sha256:
            try:
                model = await asyncio.to_thread(
                    self.store.record, record.profile_name, record.outcome_sha256
                )
            except NotFoundError:  # its profile was deleted with its models since
                operation.error.CopyFrom(
                    status_pb2.Status(
                        code=grpc.StatusCode.NOT_FOUND.value[0],
                        message=f"model {record.outcome_sha256} of profile "
                        f"{record.profile_name!r} was made, and is no longer stored",
                    )
                )
            else:
                operation.response.Pack(self.manifest(model))
        return operation

    async def _metadata(self, record: OperationRecord) -> delivery_pb2.RespecializeMetadata:
        metadata = delivery_pb2.RespecializeMetadata(
            profile_name=record.profile_name, create_time=timestamp(record.created_us)
        )
        if record.done:
            metadata.end_time.CopyFrom(timestamp(record.ended_us))
        state = await asyncio.to_thread(self.ledger.get, record.profile_name)
        if state is not None:
            metadata.state = convert.state_to_proto(state.state)
            metadata.attempts = state.attempts
            metadata.last_error = state.last_error
            if state.next_attempt_us:
                metadata.next_attempt_time.CopyFrom(timestamp(state.next_attempt_us))
        return metadata

    async def _record(self, name: str) -> OperationRecord:
        check_operation_name(name)
        record = await asyncio.to_thread(self.operations.get, name)
        if record is None:
            raise _not_found(name)
        return record


def parse_filter(text: str) -> OperationFilter:
    """ListOperations' filter (AIP-160, a subset): empty, or terms joined by AND, each
    `done = true|false` or `profile_name = "NAME"`, each at most once."""
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidArgumentError(
            f"filter must be at most {MAX_FILTER_CHARS} characters", field="filter"
        )
    terms: dict[str, str] = {}
    for term in re.split(r"\bAND\b", text) if text.strip() else []:
        match = _TERM.match(term)
        if match is None or match.group(1) in terms:
            raise InvalidArgumentError(
                "filter takes terms joined by AND, each once: done = true|false, "
                f'profile_name = "NAME"; got {term.strip()[:80]!r}',
                field="filter",
            )
        terms[match.group(1)] = match.group(2)
    done = terms.get("done")
    profile = terms.get("profile_name")
    return OperationFilter(
        profile_name=None if profile is None else profile.strip('"'),
        done=None if done is None else done == "true",
    )


def _error(record: OperationRecord) -> status_pb2.Status:
    code = grpc.StatusCode[record.error_code].value[0]
    if not record.error_reason:
        return status_pb2.Status(code=code, message=record.error_message)
    facts = {"profile": record.profile_name}
    return status(code, record.error_message, ErrorDetails(record.error_reason, facts))


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"no operation {name!r}: it never existed here, was deleted, or ended more than "
        f"{RETENTION_SECONDS / 86400:g} days ago"
    )
