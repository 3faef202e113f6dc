"""`google.longrunning.Operations` as search serves it: its searches (see `jobs`).

They live in this server's memory: a search outlives its callers (for the detached grace
period), not the server. A caller that must survive a search server's restart asks
again; the result cache or a fresh search answers.
"""

from __future__ import annotations

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import empty_pb2
from google.rpc import status_pb2
from grpc import aio

from ofa_fleet.contract.error_details import ErrorDetails, status
from ofa_fleet.contract.operation_names import check_collection, check_operation_name
from ofa_fleet.errors import InvalidArgumentError, OfaFleetError
from ofa_fleet.search import convert
from ofa_fleet.search.jobs import Jobs, SearchState
from ofa_fleet.serving.long_running import wait_seconds
from ofa_fleet.serving.status_codes import status_code_for
from ofa_fleet.serving.timestamps import timestamp
from ofa_fleet.storage.pages import check_page_size, decode_page_token, encode_page_token
from ofa_fleet.v1 import search_pb2

_FILTERS = {"": None, "done = true": True, "done = false": False}


class SearchOperationsServicer(operations_pb2_grpc.OperationsServicer):
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    async def GetOperation(  # noqa: N802
        self, request: operations_pb2.GetOperationRequest, context: aio.ServicerContext
    ) -> operations_pb2.Operation:
        return answer(self.jobs.get(check_operation_name(request.name)))

    async def ListOperations(  # noqa: N802
        self, request: operations_pb2.ListOperationsRequest, context: aio.ServicerContext
    ) -> operations_pb2.ListOperationsResponse:
        """Running and recently finished searches, ordered by name."""
        check_collection(request.name)
        wanted = " ".join(request.filter.split())
        if wanted not in _FILTERS:
            raise InvalidArgumentError(
                f"filter must be empty, 'done = true' or 'done = false'; got {wanted[:80]!r}",
                field="filter",
            )
        size = check_page_size(request.page_size)
        listing = f"searches|{wanted}"
        after = decode_page_token(request.page_token, listing)
        done = _FILTERS[wanted]
        jobs = sorted(
            (j for j in self.jobs.all() if j.name > after and done in (None, j.done)),
            key=lambda j: j.name,
        )
        token = encode_page_token(listing, jobs[size - 1].name) if len(jobs) > size else ""
        return operations_pb2.ListOperationsResponse(
            operations=[answer(j) for j in jobs[:size]], next_page_token=token
        )

    async def WaitOperation(  # noqa: N802
        self, request: operations_pb2.WaitOperationRequest, context: aio.ServicerContext
    ) -> operations_pb2.Operation:
        name = check_operation_name(request.name)
        self.jobs.get(name)  # NOT_FOUND before any wait
        timeout = request.timeout.ToNanoseconds() / 1e9 if request.HasField("timeout") else None
        wait = wait_seconds(timeout, context.time_remaining())
        return answer(await self.jobs.wait(name, wait))

    async def CancelOperation(  # noqa: N802
        self, request: operations_pb2.CancelOperationRequest, context: aio.ServicerContext
    ) -> empty_pb2.Empty:
        self.jobs.cancel(check_operation_name(request.name))
        return empty_pb2.Empty()

    async def DeleteOperation(  # noqa: N802
        self, request: operations_pb2.DeleteOperationRequest, context: aio.ServicerContext
    ) -> empty_pb2.Empty:
        self.jobs.delete(check_operation_name(request.name))
        return empty_pb2.Empty()


def answer(search: SearchState) -> operations_pb2.Operation:
    """A search as an operation: its newest progress while it runs; then its result
    (without the model, which only a stream carries) or its error."""
    metadata = search_pb2.SpecializeMetadata(
        profile_name=search.profile_name,
        create_time=timestamp(round(search.created * 1e6)),
        callers=search.callers,
    )
    if search.ended is not None:
        metadata.end_time.CopyFrom(timestamp(round(search.ended * 1e6)))
    if search.latest is not None:
        metadata.progress.CopyFrom(convert.progress_to_proto(search.latest, search.name).progress)
    operation = operations_pb2.Operation(name=search.name, done=search.done)
    operation.metadata.Pack(metadata)
    error = search.error
    if isinstance(error, OfaFleetError):
        code = status_code_for(error).value[0]
        details = ErrorDetails(error.reason, error.facts) if error.reason else None
        operation.error.CopyFrom(
            status(code, str(error), details)
            if details is not None
            else status_pb2.Status(code=code, message=str(error))
        )
    elif error is not None:  # a bug: its details are in the server's log
        operation.error.CopyFrom(
            status_pb2.Status(
                code=grpc.StatusCode.INTERNAL.value[0], message="the search failed unexpectedly"
            )
        )
    elif search.result is not None:
        operation.response.Pack(search.result)
    return operation
