"""This session's Ray worker processes, found through /proc (no psutil needed).

A local Ray's raylet is a child of the test process and its workers are the raylet's
children; Ray titles each worker ``ray::<task>`` while it runs one (``ray::IDLE`` between).
The node's agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) are children too, but
killing one takes the whole node down, so they are left out.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def ray_workers() -> dict[int, str]:
    """pid -> title of every Ray worker under this process's own Ray."""
    tree = _children()
    found: dict[int, str] = {}
    pending = list(tree.get(os.getpid(), []))
    while pending:
        pid = pending.pop()
        name = title(pid)
        if name.startswith("ray::") and not name.endswith("Agent"):  # agents are the node's
            found[pid] = name
        pending.extend(tree.get(pid, []))
    return found


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
