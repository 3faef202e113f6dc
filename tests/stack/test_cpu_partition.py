"""The closed-loop demo's CPU partition: everything on all cores but the last, which a
device takes for its turn to time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from ofa_fleet.stack.cpu_partition import TimingTurns

PARTITION_IN_A_CHILD = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    from ofa_fleet.stack.cpu_partition import partition_cpus
    below = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        partition = partition_cpus()
        print(json.dumps({
            "partition": None if partition is None else [partition.servers, partition.devices],
            "self": sorted(os.sched_getaffinity(0)),
            "below": sorted(os.sched_getaffinity(below.pid)),
        }))
    finally:
        below.kill()
    """
)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_processes_below_get_every_core_but_the_last_and_this_one_the_last():
    cpus = sorted(os.sched_getaffinity(0))
    done = subprocess.run(
        [sys.executable, "-c", PARTITION_IN_A_CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(done.stdout)
    if len(cpus) < 2:  # nothing to split: nothing changed
        assert seen["partition"] is None and seen["self"] == seen["below"] == cpus
        return
    assert seen["partition"] == [cpus[:-1], cpus[-1:]]
    assert seen["below"] == seen["self"] == cpus[:-1]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_a_timing_turn_moves_its_thread_to_the_reserved_core_and_back():
    before = os.sched_getaffinity(0)
    reserved = (max(before),)
    turns = TimingTurns(reserved)
    inside: list[set[int]] = []
    with turns:
        inside.append(os.sched_getaffinity(0))
    assert inside == [set(reserved)]
    assert os.sched_getaffinity(0) == before
    # One at a time: a second thread waits for the first turn to end.
    order: list[str] = []
    with turns:
        other = threading.Thread(target=lambda: (turns.__enter__(), order.append("other")))
        other.start()
        other.join(timeout=0.3)
        order.append("first")
    other.join(timeout=10)
    turns.__exit__(None, None, None)
    assert order == ["first", "other"]
