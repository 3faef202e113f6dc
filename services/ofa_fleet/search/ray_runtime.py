"""Joining a Ray cluster, or starting a local one with this machine's cores.

The same search code runs on one machine and on a KubeRay cluster: with an address
(``--ray-address`` or ``RAY_ADDRESS``) it joins that cluster, without one it starts a
local Ray. Workers log nothing to the driver: errors come back as exceptions, and the
services' own logs stay one JSON line per call.
"""

from __future__ import annotations

import logging
import os

import ray


def start_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect (or start) once per process; a second call is a no-op."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )


def stop_ray() -> None:
    """Disconnect; a local Ray this process started is shut down with it."""
    if ray.is_initialized():
        ray.shutdown()


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
