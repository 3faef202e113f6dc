"""A TLS server takes a renewed certificate from disk without a restart, and keeps the one
in use when the new files cannot be used."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.serving.access import OperatorAuthenticator
from ofa_fleet.serving.server import LIVENESS_SERVICE, Server, ServerConfig
from ofa_fleet.serving.tls import ReloadingCertificates, TlsFiles
from tests.certificates import Pki, make_pki
from tests.loop_thread import LoopThread
from tests.server_process import OPERATOR_TOKEN


def _pki(root: Path, name: str) -> Pki:
    folder = root / name
    folder.mkdir()
    return make_pki(folder)


def _install(pki: Pki, folder: Path) -> None:
    """Replace the served files the way a Secret volume's update does: whole, at once."""
    for source, name in ((pki.server_cert, "tls.crt"), (pki.server_key, "tls.key")):
        staged = folder / f".{name}.new"
        shutil.copyfile(source, staged)
        staged.replace(folder / name)


def _answers(port: int, ca: Path) -> bool:
    credentials = grpc.ssl_channel_credentials(ca.read_bytes())
    with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
        request = health_pb2.HealthCheckRequest(service=LIVENESS_SERVICE)
        try:
            health_pb2_grpc.HealthStub(channel).Check(request, timeout=10)
        except grpc.RpcError as error:
            if error.code() is not grpc.StatusCode.UNAVAILABLE:  # not a failed handshake
                raise
            return False
    return True


def test_a_renewed_certificate_is_served_without_a_restart(tmp_path: Path) -> None:
    first, renewed = _pki(tmp_path, "first"), _pki(tmp_path, "renewed")
    served = tmp_path / "served"
    served.mkdir()
    _install(first, served)
    files = TlsFiles(cert=served / "tls.crt", key=served / "tls.key")
    loop = LoopThread()

    async def started() -> tuple[Server, int]:
        server = Server(
            ServerConfig(tls=files, grace_seconds=0.5), [], OperatorAuthenticator(OPERATOR_TOKEN)
        )
        return server, await server.start()

    try:
        server, port = loop.run(started())
        assert _answers(port, first.ca)
        _install(renewed, served)
        assert _answers(port, renewed.ca)
        assert not _answers(port, first.ca)
        # A key that is not the certificate's: refused, the renewed certificate stays.
        shutil.copyfile(first.server_key, served / "tls.key")
        assert _answers(port, renewed.ca)
        loop.run(server.stop())
    finally:
        loop.close()


def test_files_are_read_again_only_when_they_change(tmp_path: Path) -> None:
    first, renewed = _pki(tmp_path, "a"), _pki(tmp_path, "b")
    served = tmp_path / "served"
    served.mkdir()
    _install(first, served)
    certificates = ReloadingCertificates(TlsFiles(cert=served / "tls.crt", key=served / "tls.key"))
    certificates.initial()
    assert certificates() is None and certificates() is None
    _install(renewed, served)
    assert certificates() is not None
    assert certificates() is None
    assert certificates.reloads == 1


def test_a_key_that_is_not_the_certificate_s_is_refused_at_start(tmp_path: Path) -> None:
    first, other = _pki(tmp_path, "a"), _pki(tmp_path, "b")
    files = TlsFiles(cert=first.server_cert, key=other.server_key)
    with pytest.raises(InvalidArgumentError, match="not the private key of certificate"):
        ReloadingCertificates(files).initial()
