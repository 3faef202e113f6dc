"""Reading a `Specialize` stream back: progress, the result, then the model in chunks.

Chunks must arrive in order and add up to the size and sha256 the result announced; a
stream that breaks that promise is an error, never a half model handed on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ofa_fleet.errors import RemoteCallError
from ofa_fleet.v1 import search_pb2


@dataclass(frozen=True)
class RemoteSpecialization:
    result: search_pb2.SpecializeResult
    onnx_bytes: bytes


class SpecializeStream:
    """Feed it every response; `finish` returns the checked result and model."""

    def __init__(self) -> None:
        self.result: search_pb2.SpecializeResult | None = None
        self.model = bytearray()

    def feed(self, response: search_pb2.SpecializeResponse) -> search_pb2.SearchProgress | None:
        """The progress event in ``response``, if it is one."""
        kind = response.WhichOneof("event")
        if kind == "progress":
            return response.progress
        if kind == "result":
            self.result = response.result
        elif kind == "chunk":
            if self.result is None or response.chunk.offset != len(self.model):
                raise RemoteCallError(
                    f"search sent a model chunk at offset {response.chunk.offset}, expected "
                    f"{len(self.model)}{'' if self.result else ' after the result'}",
                    "DATA_LOSS",
                )
            self.model += response.chunk.data
        return None

    def finish(self) -> RemoteSpecialization:
        result = self.result
        if result is None:
            raise RemoteCallError("the search stream ended without a result", "DATA_LOSS")
        data = bytes(self.model)
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != result.model_size or digest != result.model_sha256:
            raise RemoteCallError(
                f"search announced a {result.model_size}-byte model with sha256 "
                f"{result.model_sha256} but sent {len(data)} bytes with sha256 {digest}",
                "DATA_LOSS",
            )
        return RemoteSpecialization(result, data)
