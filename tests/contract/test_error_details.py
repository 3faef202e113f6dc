"""google.rpc details on errors: what a server encodes, a client reads back, bounded."""

from __future__ import annotations

import grpc

from ofa_fleet.contract.error_details import (
    DETAILS_KEY,
    MAX_FACT_CHARS,
    MAX_FACTS,
    MAX_RETRY_SECONDS,
    ErrorDetails,
    decode,
    encode,
)

CODE = grpc.StatusCode.UNAVAILABLE.value[0]


def test_reason_facts_and_delay_round_trip() -> None:
    sent = ErrorDetails("MODEL_NOT_READY", {"fleet": "pis"}, 5.0)
    raw = encode(CODE, "fleet 'pis' has no model yet", sent)
    assert decode([("other", "x"), (DETAILS_KEY, raw)]) == sent
    assert decode([(DETAILS_KEY, encode(CODE, "m", ErrorDetails("X")))]) == ErrorDetails("X")
    bad = ErrorDetails("INVALID_ARGUMENT", field_path="profile.cpu.cores")
    assert decode([(DETAILS_KEY, encode(3, "cores must be positive", bad))]) == bad


def test_what_crosses_the_wire_is_bounded() -> None:
    facts = {f"k{i}": "v" * 1000 for i in range(40)}
    read = decode([(DETAILS_KEY, encode(CODE, "m", ErrorDetails("X", facts, 1e9)))])
    assert read is not None and len(read.facts) == MAX_FACTS
    assert all(len(v) == MAX_FACT_CHARS for v in read.facts.values())
    assert read.retry_after_seconds == MAX_RETRY_SECONDS
    long_field = ErrorDetails("X", field_path="f" * 1000)
    read = decode([(DETAILS_KEY, encode(3, "m" * 100_000, long_field))])
    assert read is not None and len(read.field_path) == MAX_FACT_CHARS
    negative = decode([(DETAILS_KEY, encode(CODE, "m", ErrorDetails("X", {}, -3.0)))])
    assert negative is not None and negative.retry_after_seconds == 0.0


def test_absent_or_malformed_details_are_none_not_an_error() -> None:
    assert decode(None) is None and decode([]) is None
    assert decode([(DETAILS_KEY, b"\xff\xff not a status")]) is None
    assert decode([(DETAILS_KEY, "text, not bytes")]) is None
