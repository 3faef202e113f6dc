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

# gRPC's reconnect backoff grows to two minutes by default: a client whose peer was down
# for a while (a restart, a rollout) would keep failing fast long after the peer is back.
# Every client here retries on its own terms, so channels reconnect within a few seconds.
RECONNECT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)

CLIENT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", CLIENT_KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    *RECONNECT_OPTIONS,
)
