"""Secrets the local stack keeps in its workdir: made once, readable by the owner only.

The operator token is generated on the first `ofa-fleet up` and reused ever after, so
that the commands an operator exported keep working across restarts; the demo keeps its
fleets' enrolment tokens the same way, because the registry shows each only once. Files
are written atomically with mode 0600 (`storage.durable` writes through ``mkstemp``), and
one that others can read is refused rather than used.
"""

from __future__ import annotations

import json
import secrets
import stat
from pathlib import Path

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.storage.durable import write_atomic


def ensure_token_file(path: Path) -> str:
    """The token in ``path``, generated (64 hex digits) when the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (secrets.token_hex(32) + "\n").encode())
    return read_secret(path).strip()


def read_secret(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InvalidArgumentError(
            f"{path} may be read by others (mode {mode:o}): `chmod 600 {path}` or remove it"
        )
    return path.read_text()


def load_secrets(path: Path) -> dict[str, str]:
    """A JSON object of named secrets, empty when the file does not exist."""
    if not path.exists():
        return {}
    data = json.loads(read_secret(path))
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{path} must hold a JSON object")
    return {str(k): str(v) for k, v in data.items()}


def save_secrets(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(values, indent=1, sort_keys=True).encode())
