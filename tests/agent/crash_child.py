"""Run one `ModelDirectory` operation in a process that SIGKILLs itself before its Nth
filesystem call.

Every `os` function that can change what is on disk is wrapped; call number `kill_at`
(counted from 1, opening the directory included) kills the process just before it runs,
the way a power cut or an OOM kill would catch it. `kill_at` 0 kills nothing; the child
then prints the names of every call it made, so the parent knows how many steps to try.

    python crash_child.py '{"state_dir": ..., "operation": "install" | "rollback",
                            "kill_at": N, "manifest": {...}, "signature": HEX, "public_key": PEM}'
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ofa_fleet.agent.install import ModelDirectory
from ofa_fleet.agent.trust import TrustedKeys
from ofa_fleet.contract.manifest import Manifest

CHANGING_CALLS = (
    "open",
    "write",
    "fsync",
    "replace",
    "rename",
    "link",
    "unlink",
    "remove",
    "mkdir",
    "rmdir",
    "ftruncate",
)


def _kill_before_call(kill_at: int, calls: list[str]) -> None:
    for name in CHANGING_CALLS:
        real = getattr(os, name)

        def wrapped(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            if len(calls) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return _real(*args, **kwargs)

        setattr(os, name, wrapped)


def main() -> None:
    spec = json.loads(sys.argv[1])
    calls: list[str] = []
    _kill_before_call(spec["kill_at"], calls)
    directory = ModelDirectory(Path(spec["state_dir"]))
    if spec["operation"] == "install":
        directory.install(
            Manifest.from_dict(spec["manifest"]),
            bytes.fromhex(spec["signature"]),
            TrustedKeys.of(spec["public_key"].encode()),
        )
    else:
        directory.rollback()
    print(json.dumps(calls))


if __name__ == "__main__":
    main()
