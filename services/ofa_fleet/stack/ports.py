"""A busy port is named before any server starts.

gRPC servers bind with ``SO_REUSEPORT``, so a second server on a port another gRPC
server holds would *share* it, and calls would land on either at random. A plain bind
(no ``SO_REUSEPORT``) fails on any listener, so trying one first turns that silent
mix-up into a clear error. ``SO_REUSEADDR`` keeps connections of a server that just
stopped (TIME_WAIT) from counting as busy.
"""

from __future__ import annotations

import errno
import socket

from ofa_fleet.errors import FailedPreconditionError


def ensure_free(host: str, port: int, name: str, flag: str) -> None:
    """Raise naming ``port``, ``name`` and ``flag`` when something listens there (0 is free)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise FailedPreconditionError(
                f"port {port} on {host} (for the {name}) is in use: stop what listens there, "
                f"or pass {flag} with another port (0 picks a free one)"
            ) from None
