"""On a device's install (no [server] extra), a server command fails in one line that says
what to install, never with a traceback or an "internal error"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ofa_fleet.cli.entry import SERVER_INSTALL

# Runs the CLI with the [server] libraries made unimportable, as on a device.
WITHOUT_SERVER_LIBRARIES = """
import sys
for name in ("torch", "ray", "sqlalchemy", "sklearn", "alembic", "scipy", "matplotlib"):
    sys.modules[name] = None
from ofa_fleet.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER_LIBRARIES, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_server_command_names_the_extra_it_needs(tmp_path: Path) -> None:
    refused = _run("train", "--out", str(tmp_path / "supernet.ckpt"))
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip() == (
        "error: ofa-fleet train needs the servers' libraries (torch is not installed; "
        f"this is a device's install): {SERVER_INSTALL}"
    )


def test_the_device_commands_still_run(tmp_path: Path) -> None:
    version = _run("--version")
    assert version.returncode == 0 and version.stdout.startswith("ofa-fleet ")
    enrol = _run("device", "run", "--delivery", "127.0.0.1:1", "--state", str(tmp_path / "s"))
    assert enrol.returncode == 2 and "--fleet-token" in enrol.stderr  # its own error
