"""Simulated devices time on a core of their own, away from the servers.

A device's CPU is its own; on one machine, devices timed while search specializes
measured 2 to 4 times their quiet latency (`ofa-fleet demo --closed-loop`, before this
partition: a 2.5 ms model reported at 10.3 ms), and those figures, reported as the
devices' measurements, teach search that nothing fits. So the closed-loop demo pins the
servers (every process below this one: registry, search and its Ray processes,
delivery) to all cores but the last, and this process, where the devices run and time
one at a time, to the last. Linux only (`os.sched_setaffinity`), and only with two or
more cores; elsewhere the devices share the CPU with the servers, and the result says so.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class CpuPartition:
    servers: tuple[int, ...]
    devices: tuple[int, ...]


def partition_cpus() -> CpuPartition | None:
    """Pin this process's descendants to all cores but the last and this process to the
    last; None where that cannot be done (then nothing changed)."""
    if not hasattr(os, "sched_setaffinity") or not PROC.is_dir():
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    partition = CpuPartition(tuple(cpus[:-1]), tuple(cpus[-1:]))
    for pid in descendants(os.getpid()):
        pin(pid, partition.servers)
    pin(os.getpid(), partition.devices)
    return partition


def descendants(root: int) -> list[int]:
    """Every live process below ``root``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone since the listing
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pin(pid: int, cpus: tuple[int, ...]) -> None:
    """Every thread of ``pid`` (a process's affinity is per thread; new threads and
    children inherit their creator's)."""
    try:
        threads = [int(t.name) for t in (PROC / str(pid) / "task").iterdir()]
    except OSError:
        return
    for thread in threads:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(thread, cpus)
