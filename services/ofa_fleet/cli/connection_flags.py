"""The flags every client command connects with: service addresses and TLS files.

One place, so that each address has the same flag, environment variable and default in
every command (`status`, `profiles`, `models`, `device run`, `fleet simulate`), and a
deployment that sets ``OFA_FLEET_REGISTRY`` once is heard by all of them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ofa_fleet.serving.ports import DELIVERY_PORT, REGISTRY_PORT, SEARCH_PORT
from ofa_fleet.serving.tls import TlsFiles

# service -> (environment variable, default port)
ENDPOINTS = {
    "registry": ("OFA_FLEET_REGISTRY", REGISTRY_PORT),
    "search": ("OFA_FLEET_SEARCH", SEARCH_PORT),
    "delivery": ("OFA_FLEET_DELIVERY", DELIVERY_PORT),
}


def default_address(service: str) -> str:
    return f"127.0.0.1:{ENDPOINTS[service][1]}"


def add_endpoint_flags(parser: argparse.ArgumentParser, *services: str) -> None:
    """``--registry``, ``--search``, ``--delivery``: each from its variable, else loopback."""
    for service in services:
        env, _ = ENDPOINTS[service]
        default = default_address(service)
        parser.add_argument(
            f"--{service}",
            default=os.environ.get(env, default),
            help=f"{service} address (env {env}; default {default})",
        )


def add_tls_flags(
    parser: argparse.ArgumentParser, signer: str = "the services' certs", mutual: bool = True
) -> None:
    """``--tls-ca`` (TLS on) and, with ``mutual``, ``--tls-cert``/``--tls-key``."""
    parser.add_argument("--tls-ca", type=Path, help=f"PEM CA that signed {signer}")
    if mutual:
        parser.add_argument("--tls-cert", type=Path, help="client certificate for mutual TLS")
        parser.add_argument("--tls-key", type=Path, help="key of --tls-cert")


def tls_files(args: argparse.Namespace) -> TlsFiles:
    return TlsFiles(
        cert=getattr(args, "tls_cert", None), key=getattr(args, "tls_key", None), ca=args.tls_ca
    )
