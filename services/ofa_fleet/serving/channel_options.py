"""gRPC channel options that servers and clients must agree on.

A client that pings more often than the server permits is cut off with "too_many_pings";
keeping both sides' figures in one module keeps them consistent. Long watch streams need
keepalive so a dead peer behind a NAT or load balancer is noticed.
"""

from __future__ import annotations

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
CLIENT_KEEPALIVE_MS = 30_000
SERVER_MIN_PING_INTERVAL_MS = 10_000  # must stay below CLIENT_KEEPALIVE_MS

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", SERVER_MIN_PING_INTERVAL_MS),
    ("grpc.http2.max_ping_strikes", 2),
)

CLIENT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", CLIENT_KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
)
