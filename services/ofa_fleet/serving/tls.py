"""TLS for servers and clients from PEM files: plain, server-only or mutual.

Plaintext is for loopback and tests; the server refuses to listen in plaintext on any
other address unless told explicitly that something else (a mesh sidecar) encrypts.

A server reads its certificate, key and client CA again when they change on disk
(`ReloadingCertificates`): certificates are renewed well before they expire (cert-manager
rewrites a Kubernetes Secret's files in place), and a server that kept the one it started
with would fail every handshake once that expired, long after the renewal.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

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


log = logging.getLogger("ofa_fleet.server")


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server TLS; with `files.ca`, clients must present a certificate it signed (mTLS).

    The files are read again when they change (`ReloadingCertificates`)."""
    certificates = ReloadingCertificates(files)
    return grpc.dynamic_ssl_server_credentials(
        certificates.initial(),
        certificates,  # type: ignore[arg-type]  # None means "no change" (gRPC's docs)
        require_client_authentication=files.ca is not None,
    )


class ReloadingCertificates:
    """What a TLS server presents, read again whenever its files change on disk.

    gRPC calls an instance at every handshake; it answers None (keep what you have)
    unless a file's size, modification time or inode changed since it last looked, which
    costs three `stat` calls. A changed set that cannot be used (a key that is not the
    certificate's, a file half written) is logged and the certificate in use is kept.
    """

    def __init__(self, files: TlsFiles) -> None:
        if files.cert is None or files.key is None:
            raise InvalidArgumentError("a TLS server needs --tls-cert and --tls-key")
        self.files = files
        self.reloads = 0
        self._seen = self._stamp()

    def initial(self) -> grpc.ServerCertificateConfiguration:
        """The configuration at start; `InvalidArgumentError` when the files are unusable."""
        return self._load()

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            stamp = self._stamp()
        except OSError:
            return None  # a Secret volume in the middle of its swap: look again next time
        if stamp == self._seen:
            return None
        self._seen = stamp
        try:
            configuration = self._load()
        except (OSError, InvalidArgumentError) as exc:
            log.warning(
                "keeping the TLS certificate in use: its files changed but cannot be used",
                extra={"error": str(exc)},
            )
            return None
        self.reloads += 1
        log.info("TLS certificate reloaded", extra={"cert": str(self.files.cert)})
        return configuration

    def _paths(self) -> list[Path]:
        return [p for p in (self.files.cert, self.files.key, self.files.ca) if p is not None]

    def _stamp(self) -> tuple[tuple[int, int, int], ...]:
        stats = [os.stat(path) for path in self._paths()]
        return tuple((s.st_ino, s.st_size, s.st_mtime_ns) for s in stats)

    def _load(self) -> grpc.ServerCertificateConfiguration:
        assert self.files.cert is not None and self.files.key is not None
        cert, key = self.files.cert.read_bytes(), self.files.key.read_bytes()
        _check_pair(cert, key, self.files.cert)
        ca = self.files.ca.read_bytes() if self.files.ca else None
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)


def _check_pair(cert_pem: bytes, key_pem: bytes, where: Path) -> None:
    """Raise `InvalidArgumentError` unless `key_pem` is the private key of `cert_pem`."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(
            f"TLS certificate or key beside {where} is unreadable: {exc}"
        ) from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) != key.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise InvalidArgumentError(f"the TLS key is not the private key of certificate {where}")


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
