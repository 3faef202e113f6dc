"""gRPC channel options that servers and clients must agree on.

A client that pings more often than the server permits is cut off with "too_many_pings";
keeping both sides' figures in one module keeps them consistent. Long watch streams need
keepalive so a dead peer behind a NAT or load balancer is noticed.
"""

from __future__ import annotations

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
CLIENT_KEEPALIVE_MS = 30_000
SERVER_MIN_PING_INTERVAL_MS = 10_000  # must stay below CLIENT_KEEPALIVE_MS

# gRPC's core queues calls the server has not yet taken up, and past about a thousand it
# refuses new ones (clients see CANCELLED). A fleet reconnects all at once (its watch
# streams after a restart, its heartbeats after a network blip): 10,000 devices opening
# WatchModel together were refused 20,218 times and took 27 s to settle behind their
# backoff, against 9.7 s and none refused with room for the whole burst
# (bench/fleet_load.py, 2 cores). A queued call costs a few KiB, and one left waiting
# past gRPC's 30 s limit is still cancelled, so the queue stays bounded.
MAX_PENDING_CALLS = 20_000
MAX_PENDING_CALLS_HARD = 40_000

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", SERVER_MIN_PING_INTERVAL_MS),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.server.max_pending_requests", MAX_PENDING_CALLS),
    ("grpc.server.max_pending_requests_hard_limit", MAX_PENDING_CALLS_HARD),
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
