"""`google.longrunning.Operations` as search serves it: its searches (see `jobs`).

They live in this server's memory: a search outlives its callers (for the detached grace
period), not the server. A caller that must survive a search server's restart asks
again; the result cache or a fresh search answers.
"""

from __future__ import annotations

import asyncio

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import empty_pb2
from google.rpc import status_pb2
from grpc import aio

from ofa_fleet.contract.error_details import ErrorDetails, status
from ofa_fleet.contract.operation_names import check_collection, check_operation_name
from ofa_fleet.errors import InvalidArgumentError, OfaFleetError
from ofa_fleet.search import convert
from ofa_fleet.search.jobs import Job, Jobs
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
        job = self.jobs.get(check_operation_name(request.name))
        timeout = request.timeout.ToNanoseconds() / 1e9 if request.HasField("timeout") else None
        wait = wait_seconds(timeout, context.time_remaining())
        await asyncio.wait({job.work}, timeout=wait)  # which never cancels the search
        return answer(job)

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


def answer(job: Job) -> operations_pb2.Operation:
    """A search as an operation: its newest progress while it runs; then its result
    (without the model, which only a stream carries) or its error."""
    metadata = search_pb2.SpecializeMetadata(
        profile_name=job.profile_name,
        create_time=timestamp(round(job.created * 1e6)),
        callers=len(job.callers),
    )
    if job.ended is not None:
        metadata.end_time.CopyFrom(timestamp(round(job.ended * 1e6)))
    if job.latest is not None:
        metadata.progress.CopyFrom(convert.progress_to_proto(job.latest, job.name).progress)
    operation = operations_pb2.Operation(name=job.name, done=job.done)
    operation.metadata.Pack(metadata)
    if not job.done:
        return operation
    error = None if job.work.cancelled() else job.work.exception()
    if job.work.cancelled():
        operation.error.CopyFrom(
            status_pb2.Status(code=grpc.StatusCode.CANCELLED.value[0], message="search stopped")
        )
    elif isinstance(error, OfaFleetError):
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
    else:
        operation.response.Pack(convert.result_to_proto(job.work.result(), job.name).result)
    return operation
