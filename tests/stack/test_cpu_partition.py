"""The closed-loop demo's CPU partition: servers below, devices on a core of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

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
    assert (seen["below"], seen["self"]) == (cpus[:-1], cpus[-1:])
