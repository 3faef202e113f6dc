"""What the device agent costs a device: install size, cold start and resident memory of
the base install (`pip install ofa-fleet`, no [server] extra), beside the full install in
`.venv` (the servers' libraries included) measured in the same run.

    .venv/bin/python bench/agent_footprint.py [--python python3.10] [--runs 5]

The light install goes into a fresh virtual environment from the package index. Cold
start: wall seconds of `ofa-fleet --version` and of an agent that starts, tries to enrol
against a closed port and gives up (`device run --once --deadline 1`), median of
``--runs`` runs. Memory: the largest resident set of that agent (it has imported gRPC,
onnxruntime and the agent, but loaded no model: a model's onnxruntime session adds about
its own size again).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def folder_mb(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return total / 1e6


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3.*/site-packages"))


def timed(command: list[str], cwd: Path) -> float:
    """Wall seconds of one run of ``command``."""
    started = time.perf_counter()
    subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1"},
    )
    return time.perf_counter() - started


def measure(venv: Path, runs: int, work: Path) -> dict[str, float]:
    ofa_fleet = str(venv / "bin" / "ofa-fleet")
    agent = [
        ofa_fleet, "device", "run", "--registry", "127.0.0.1:1", "--delivery", "127.0.0.1:1",
        "--fleet-token", "x" * 32, "--state", str(work / "state"), "--once", "--deadline", "1",
    ]  # fmt: skip
    return {
        "site_packages_mb": folder_mb(site_packages(venv)),
        "version_s": statistics.median(timed([ofa_fleet, "--version"], work) for _ in range(runs)),
        "agent_s": statistics.median(timed(agent, work) for _ in range(runs)),
    }


def agent_rss_mb(venv: Path, work: Path) -> float:
    """Peak RSS of one agent run, in a process of its own (ru_maxrss of children is a
    high-water mark over all of them, so each install is measured by a fresh child)."""
    probe = (
        "import resource, subprocess, sys, os; "
        "subprocess.run(sys.argv[1:], capture_output=True, timeout=120, "
        "env={**os.environ, 'PYTHONPATH': '', 'OMP_NUM_THREADS': '1'}); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    agent = [
        str(venv / "bin" / "ofa-fleet"), "device", "run", "--registry", "127.0.0.1:1",
        "--delivery", "127.0.0.1:1", "--fleet-token", "x" * 32, "--state",
        str(work / "rss-state"), "--once", "--deadline", "1",
    ]  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", probe, *agent], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="the device's Python")
    parser.add_argument("--runs", type=int, default=5, help="runs per timing (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        light = work / "light"
        subprocess.run([args.python, "-m", "venv", str(light)], check=True)
        started = time.perf_counter()
        subprocess.run(
            [str(light / "bin" / "python"), "-m", "pip", "install", "--quiet", str(ROOT)],
            check=True,
            cwd=work,
        )
        install_s = time.perf_counter() - started
        full = ROOT / ".venv"
        results = {
            "light": {**measure(light, args.runs, work), "rss_mb": agent_rss_mb(light, work)},
            "full": {**measure(full, args.runs, work), "rss_mb": agent_rss_mb(full, work)},
        }
        python = subprocess.run(
            [str(light / "bin" / "python"), "--version"], capture_output=True, text=True
        ).stdout.strip()
    print(f"light install: {python}, pip install took {install_s:.1f} s")
    header = ("site-packages MB", "--version s", "agent start s", "agent RSS MB")
    print(f"{'':8}{header[0]:>18}{header[1]:>13}{header[2]:>15}{header[3]:>14}")
    for name, figures in results.items():
        print(
            f"{name:8}{figures['site_packages_mb']:>18.0f}{figures['version_s']:>13.2f}"
            f"{figures['agent_s']:>15.2f}{figures['rss_mb']:>14.0f}"
        )
    light_f, full_f = results["light"], results["full"]
    print(
        f"light/full: size {light_f['site_packages_mb'] / full_f['site_packages_mb']:.3f}, "
        f"--version {light_f['version_s'] / full_f['version_s']:.2f}, "
        f"agent start {light_f['agent_s'] / full_f['agent_s']:.2f}, "
        f"RSS {light_f['rss_mb'] / full_f['rss_mb']:.2f}"
    )


if __name__ == "__main__":
    main()
