"""Where a client connects and with what, resolved as the CLI resolves it.

Each value comes from the caller's argument, else its environment variable
(``OFA_FLEET_REGISTRY``, ``OFA_FLEET_DELIVERY``, ``OFA_FLEET_SEARCH``,
``OFA_FLEET_OPERATOR_TOKEN``), else the chosen context (`contexts`), else the default
(loopback, the standard ports): a script and `ofa-fleet` on one machine reach the same
services with the same token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ofa_fleet.client.contexts import active_context
from ofa_fleet.serving.credentials import OPERATOR_TOKEN_ENV, load_operator_token
from ofa_fleet.serving.ports import DELIVERY_PORT, REGISTRY_PORT, SEARCH_PORT
from ofa_fleet.serving.tls import TlsFiles

ENDPOINTS = {
    "registry": ("OFA_FLEET_REGISTRY", REGISTRY_PORT),
    "search": ("OFA_FLEET_SEARCH", SEARCH_PORT),
    "delivery": ("OFA_FLEET_DELIVERY", DELIVERY_PORT),
}
DEFAULT_DEADLINE_SECONDS = 10.0


def default_address(service: str) -> str:
    """Where a service listens when nothing says otherwise: loopback, its standard port."""
    return f"127.0.0.1:{ENDPOINTS[service][1]}"


@dataclass(frozen=True)
class ClientSettings:
    registry: str
    delivery: str
    search: str
    token: str
    tls: TlsFiles
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS

    @classmethod
    def resolve(
        cls,
        *,
        registry: str | None = None,
        delivery: str | None = None,
        search: str | None = None,
        token: str | None = None,
        token_file: Path | None = None,
        tls_ca: Path | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    ) -> ClientSettings:
        """Arguments first, then the environment, then the context, then defaults."""
        context = active_context()

        def address(service: str, given: str | None) -> str:
            env, _ = ENDPOINTS[service]
            return given or os.environ.get(env) or context.get(service) or default_address(service)

        def file(key: str, given: Path | None) -> Path | None:
            return given or (Path(context[key]) if key in context else None)

        if token is None:
            from_env = os.environ.get(OPERATOR_TOKEN_ENV, "").strip()
            context_file = file("operator_token_file", None)
            token = load_operator_token(token_file or (None if from_env else context_file))
        return cls(
            registry=address("registry", registry),
            delivery=address("delivery", delivery),
            search=address("search", search),
            token=token,
            tls=TlsFiles(
                cert=file("tls_cert", tls_cert),
                key=file("tls_key", tls_key),
                ca=file("tls_ca", tls_ca),
            ),
            deadline_seconds=deadline_seconds,
        )
