"""Reading a Specialize stream: chunks in order, size and sha256 as announced."""

from __future__ import annotations

import hashlib

import pytest

from ofa_fleet.errors import RemoteCallError
from ofa_fleet.search.convert import model_chunks
from ofa_fleet.search.stream import SpecializeStream
from ofa_fleet.v1 import search_pb2

MODEL = bytes(range(256)) * 50


def announced(data: bytes = MODEL) -> search_pb2.SpecializeResponse:
    return search_pb2.SpecializeResponse(
        result=search_pb2.SpecializeResult(
            model_size=len(data), model_sha256=hashlib.sha256(data).hexdigest()
        )
    )


def test_progress_result_and_chunks_assemble_into_the_model():
    stream = SpecializeStream()
    progress = search_pb2.SpecializeResponse(progress=search_pb2.SearchProgress(generation=3))
    assert stream.feed(progress).generation == 3
    assert stream.feed(announced()) is None
    chunks = list(model_chunks(MODEL, chunk_bytes=1000))
    assert len(chunks) == 13
    for chunk in chunks:
        stream.feed(chunk)
    assert stream.finish().onnx_bytes == MODEL


def test_a_chunk_out_of_order_or_before_the_result_is_data_loss():
    chunks = list(model_chunks(MODEL, chunk_bytes=1000))
    early = SpecializeStream()
    with pytest.raises(RemoteCallError, match="after the result") as error:
        early.feed(chunks[0])
    assert error.value.code == "DATA_LOSS"
    skipped = SpecializeStream()
    skipped.feed(announced())
    with pytest.raises(RemoteCallError, match="offset 1000, expected 0"):
        skipped.feed(chunks[1])


def test_a_short_or_altered_model_is_data_loss():
    short = SpecializeStream()
    short.feed(announced())
    short.feed(next(model_chunks(MODEL, chunk_bytes=1000)))
    with pytest.raises(RemoteCallError, match="sent 1000 bytes"):
        short.finish()
    with pytest.raises(RemoteCallError, match="without a result"):
        SpecializeStream().finish()
