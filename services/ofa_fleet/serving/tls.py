"""TLS for servers and clients from PEM files: plain, server-only or mutual.

Plaintext is for loopback and tests; the server refuses to listen in plaintext on any
other address unless told explicitly that something else (a mesh sidecar) encrypts.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc

from ofa_fleet.errors import InvalidArgumentError, NotFoundError


@dataclass(frozen=True)
class TlsFiles:
    """Certificate and key of this side; `ca` verifies the other side when given."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise InvalidArgumentError("--tls-cert and --tls-key must be given together")
        for path in (self.cert, self.key, self.ca):
            if path is not None and not path.is_file():
                raise NotFoundError(f"TLS file {path} does not exist")

    @property
    def enabled(self) -> bool:
        return self.cert is not None or self.ca is not None


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server TLS; with `files.ca`, clients must present a certificate it signed (mTLS)."""
    if files.cert is None or files.key is None:
        raise InvalidArgumentError("a TLS server needs --tls-cert and --tls-key")
    ca = files.ca.read_bytes() if files.ca else None
    return grpc.ssl_server_credentials(
        [(files.key.read_bytes(), files.cert.read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Client TLS: `files.ca` verifies the server; cert and key answer a mutual-TLS server."""
    return grpc.ssl_channel_credentials(
        root_certificates=files.ca.read_bytes() if files.ca else None,
        private_key=files.key.read_bytes() if files.key else None,
        certificate_chain=files.cert.read_bytes() if files.cert else None,
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
