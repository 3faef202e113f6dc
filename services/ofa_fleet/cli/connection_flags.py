"""The flags every client command connects with: service addresses and TLS files.

One place, so that each address has the same flag, environment variable and default in
every command (`status`, `profiles`, `models`, `device run`, `fleet simulate`), and a
deployment that sets ``OFA_FLEET_REGISTRY`` once, or chooses a context (`contexts`), is
heard by all of them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ofa_fleet.client.contexts import active_context
from ofa_fleet.client.settings import ENDPOINTS, default_address
from ofa_fleet.errors import OfaFleetError
from ofa_fleet.serving.credentials import OPERATOR_TOKEN_ENV
from ofa_fleet.serving.tls import TlsFiles


def add_endpoint_flags(parser: argparse.ArgumentParser, *services: str) -> None:
    """``--registry``, ``--search``, ``--delivery``: each from its variable, else the
    chosen context (`contexts`), else loopback."""
    context = _context(parser)
    for service in services:
        env, _ = ENDPOINTS[service]
        default = default_address(service)
        parser.add_argument(
            f"--{service}",
            default=os.environ.get(env) or context.get(service) or default,
            help=f"{service} address (env {env}, else the context's; default {default})",
        )


def add_tls_flags(
    parser: argparse.ArgumentParser, signer: str = "the services' certs", mutual: bool = True
) -> None:
    """``--tls-ca`` (TLS on) and, with ``mutual``, ``--tls-cert``/``--tls-key``; each
    defaults to the chosen context's file."""
    context = _context(parser)

    def default(key: str) -> Path | None:
        return Path(context[key]) if key in context else None

    parser.add_argument(
        "--tls-ca", type=Path, default=default("tls_ca"), help=f"PEM CA that signed {signer}"
    )
    if mutual:
        parser.add_argument(
            "--tls-cert",
            type=Path,
            default=default("tls_cert"),
            help="client certificate for mutual TLS",
        )
        parser.add_argument(
            "--tls-key", type=Path, default=default("tls_key"), help="key of --tls-cert"
        )


def operator_token_file(args: argparse.Namespace) -> Path | None:
    """Where the operator token comes from: --operator-token-file, else (unless the token
    is in the environment) the chosen context's file; None: the environment's."""
    if args.operator_token_file is not None:
        return Path(args.operator_token_file)
    if os.environ.get(OPERATOR_TOKEN_ENV, "").strip():
        return None
    file = _context(None).get("operator_token_file")
    return Path(file) if file else None


def _context(parser: argparse.ArgumentParser | None) -> dict[str, str]:
    """The chosen context, read when a client command's parser is built. A faulty config
    must not stop commands that ignore it (`serve`, `--help`), so its error is kept on
    the parser and raised only when this command runs (`entry.run`)."""
    try:
        return active_context()
    except OfaFleetError as error:
        if parser is not None:
            parser.set_defaults(context_error=error)
        return {}


def tls_files(args: argparse.Namespace) -> TlsFiles:
    return TlsFiles(
        cert=getattr(args, "tls_cert", None), key=getattr(args, "tls_key", None), ca=args.tls_ca
    )
