"""The port each service listens on unless told otherwise, and where clients look first.

One place, because the servers, the clients' default endpoints and the local stack must
agree on them.
"""

from __future__ import annotations

REGISTRY_PORT = 50051
SEARCH_PORT = 50052
DELIVERY_PORT = 50053
