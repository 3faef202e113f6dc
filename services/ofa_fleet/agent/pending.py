"""Which model a partial download belongs to, so the next start can ask to resume it.

A resumed download reads on from the partial file's size, but only if the model it was
downloading is still the one delivery names; otherwise the partial is moot. The partial file
itself is named by its sha256 inside `ModelDirectory`; `STATE/download.json` names the one
in progress. It changes once per model, never per chunk, so it costs nothing to keep.
"""

from __future__ import annotations

import json
from pathlib import Path

from ofa_fleet.contract.fields import check_sha256
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.storage.durable import write_atomic

PENDING_NAME = "download.json"


def pending_path(state_dir: Path) -> Path:
    return Path(state_dir) / PENDING_NAME


def read_pending(state_dir: Path) -> str | None:
    """The sha256 being downloaded, or None.

    A damaged record is treated as none (it is only ever replaced whole, so damage
    came from outside): the worst outcome is a download that starts again from zero.
    """
    try:
        data = json.loads(pending_path(state_dir).read_bytes())
        return check_sha256(data["sha256"], "sha256", required=True)
    except (OSError, ValueError, KeyError, TypeError, InvalidArgumentError):
        return None


def write_pending(state_dir: Path, sha256: str) -> None:
    record = {"sha256": check_sha256(sha256, "sha256", required=True)}
    write_atomic(pending_path(state_dir), json.dumps(record).encode())


def clear_pending(state_dir: Path) -> None:
    pending_path(state_dir).unlink(missing_ok=True)
