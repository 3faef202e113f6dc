"""Search's two calls for a client: the supernet it serves, and a specialization followed
to its end (progress as it comes, then the checked result and the model's bytes)."""

from __future__ import annotations

from collections.abc import Callable

from grpc import aio

from ofa_fleet.search.stream import RemoteSpecialization, SpecializeStream
from ofa_fleet.serving.client import bearer, remote_error
from ofa_fleet.v1 import common_pb2, search_pb2, search_pb2_grpc

SPECIALIZE_SECONDS = 600.0  # a search on a busy cluster; the caller may ask for less


class SearchClient:
    def __init__(
        self,
        stub: search_pb2_grpc.SearchServiceStub,
        token: str,
        address: str,
        deadline_seconds: float,
    ) -> None:
        self.stub = stub
        self.token = token
        self.address = address
        self.deadline_seconds = deadline_seconds

    async def get_supernet(self) -> search_pb2.GetSupernetResponse:
        """The supernet search specializes from (its version and ledger)."""
        try:
            answer: search_pb2.GetSupernetResponse = await self.stub.GetSupernet(
                search_pb2.GetSupernetRequest(),
                metadata=bearer(self.token),
                timeout=self.deadline_seconds,
            )
        except aio.AioRpcError as error:
            raise remote_error("search", self.address, error) from None
        return answer

    async def specialize(
        self,
        profile: common_pb2.HardwareProfile | str,
        options: search_pb2.SearchOptions | None = None,
        on_progress: Callable[[search_pb2.SearchProgress], None] | None = None,
        timeout_seconds: float = SPECIALIZE_SECONDS,
    ) -> RemoteSpecialization:
        """The best subnet for `profile` (a profile, or a name search looks up in the
        registry); the model's bytes are checked against the sha256 search sent."""
        request = search_pb2.SpecializeRequest(options=options or search_pb2.SearchOptions())
        if isinstance(profile, str):
            request.profile_name = profile
        else:
            request.profile.CopyFrom(profile)
        stream = SpecializeStream()
        try:
            async for response in self.stub.Specialize(
                request, metadata=bearer(self.token), timeout=timeout_seconds
            ):
                progress = stream.feed(response)
                if progress is not None and on_progress is not None:
                    on_progress(progress)
        except aio.AioRpcError as error:
            raise remote_error("search", self.address, error) from None
        return stream.finish()
