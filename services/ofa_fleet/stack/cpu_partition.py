"""Simulated devices time on a core of their own, away from the servers.

A device's CPU is its own; on one machine, devices timed while search specializes
measured 2 to 4 times their quiet latency (`ofa-fleet demo --closed-loop`, before this
partition: a 2.5 ms model reported at 10.3 ms), and those figures, reported as the
devices' measurements, teach search that nothing fits. So the closed-loop demo keeps the
last core for timing: the servers (every process below this one: registry, search and
its Ray processes, delivery) and this process's own threads (the devices' event loop,
gRPC) run on the others, and a device that times (`TimingTurns`: one at a time) moves
its thread to the last core for the while. Pinning the whole device process to that
core instead measured models at twice their table's prediction: the devices' own
downloads and boots ran beside the timing. Linux only (`os.sched_setaffinity`), and
only with two or more cores; elsewhere devices share the CPU, and the result says so.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class CpuPartition:
    servers: tuple[int, ...]
    devices: tuple[int, ...]


def partition_cpus() -> CpuPartition | None:
    """Pin this process and its descendants to all cores but the last, which timing
    turns use; None where that cannot be done (then nothing changed)."""
    if not hasattr(os, "sched_setaffinity") or not PROC.is_dir():
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    partition = CpuPartition(tuple(cpus[:-1]), tuple(cpus[-1:]))
    for pid in [os.getpid(), *descendants(os.getpid())]:
        pin(pid, partition.servers)
    return partition


class TimingTurns:
    """One device times at a time, on ``cpus`` when given (its thread moves there for
    its turn and back after); a context manager for `BootSettings.timing_turns`."""

    def __init__(self, cpus: tuple[int, ...] | None = None) -> None:
        self.cpus = cpus
        self._lock = threading.Lock()
        self._before: set[int] | None = None

    def __enter__(self) -> TimingTurns:
        self._lock.acquire()
        if self.cpus:
            self._before = os.sched_getaffinity(0)
            os.sched_setaffinity(0, self.cpus)  # this thread only
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._before is not None:
                os.sched_setaffinity(0, self._before)
                self._before = None
        finally:
            self._lock.release()


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
