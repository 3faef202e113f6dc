"""Microseconds since the epoch, as the services keep time, to protobuf `Timestamp`."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp(micros: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp
