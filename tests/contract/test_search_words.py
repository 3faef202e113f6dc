"""The search's closed sets: every word has its enum value and back, so a new latency
source or stop reason cannot reach the wire as UNSPECIFIED unnoticed."""

from __future__ import annotations

from ofa_fleet.contract.search_words import (
    latency_source_from_proto,
    latency_source_to_proto,
    stop_reason_from_proto,
    stop_reason_to_proto,
)
from ofa_fleet.predictors.latency import SOURCES
from ofa_fleet.v1 import search_pb2


def test_every_latency_source_has_its_enum_value_and_back() -> None:
    values = {latency_source_to_proto(source) for source in SOURCES}
    assert 0 not in values and len(values) == len(SOURCES)
    assert {latency_source_from_proto(v) for v in values} == set(SOURCES)
    named = set(search_pb2.LatencySource.values()) - {search_pb2.LATENCY_SOURCE_UNSPECIFIED}
    assert named == values  # no enum value without a source


def test_stop_reasons_round_trip_and_unknowns_are_unspecified() -> None:
    for reason in ("converged", "generations"):
        assert stop_reason_from_proto(stop_reason_to_proto(reason)) == reason
    assert stop_reason_to_proto("") == stop_reason_to_proto("bored") == 0
    assert stop_reason_from_proto(0) == stop_reason_from_proto(99) == ""
