"""The JSON log lines, and what becomes of gRPC's own noise about clients that went away."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from grpc._cython import cygrpc

from ofa_fleet.serving.logs import configure_logging


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    written = io.StringIO()
    monkeypatch.setattr(sys, "stderr", written)
    configure_logging("info")
    yield written
    root.handlers[:], root.level = saved[0], saved[1]


def logged(lines: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines.getvalue().splitlines()]


def test_a_client_that_went_away_mid_stream_is_one_info_line_without_a_traceback(lines):
    try:
        raise cygrpc.ExecuteBatchError('Failed "execute_batch": (SendMessageOperation,)')
    except cygrpc.ExecuteBatchError:
        logging.getLogger("grpc._cython.cygrpc").exception(
            "ExecuteBatchError raised in core by servicer method [%s]", "/x.v1.S/ReadModel"
        )
    (entry,) = logged(lines)
    assert entry["level"] == "info" and "exception" not in entry
    assert entry["event"].startswith("client went away mid-call")
    assert "/x.v1.S/ReadModel" in entry["event"]


def test_every_other_error_keeps_its_level_and_traceback(lines):
    for logger in ("grpc._cython.cygrpc", "ofa_fleet.delivery"):
        try:
            raise RuntimeError("a real fault")
        except RuntimeError:
            logging.getLogger(logger).exception("unexpected")
    try:
        raise cygrpc.ExecuteBatchError("ours, not gRPC's")
    except cygrpc.ExecuteBatchError:
        logging.getLogger("ofa_fleet.delivery").exception("unexpected")
    entries = logged(lines)
    assert [e["level"] for e in entries] == ["error"] * 3
    assert all("Traceback" in str(e["exception"]) for e in entries)


def test_the_quietened_line_is_dropped_below_info(lines):
    logging.getLogger().setLevel(logging.WARNING)
    try:
        raise cygrpc.ExecuteBatchError("gone")
    except cygrpc.ExecuteBatchError:
        logging.getLogger("grpc._cython.cygrpc").exception("ExecuteBatchError raised in core")
    assert logged(lines) == []
