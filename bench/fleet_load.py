"""A fleet of ``--devices`` lean devices against one registry and one delivery.

The servers are real ``ofa-fleet serve`` processes on loopback with SQLite files in a
temporary folder (``bench/fleet_servers.py``): the interceptors, device authentication
through the registry, the stores, all as deployed. Two real models of the same profile
are in delivery's store (the current one, exported from ``--checkpoint`` as ``--arch``,
and the one before it in the profile's history). The devices are
``bench/fleet_devices.py`` processes (``--processes``, each its share of the devices on
``--channels`` connections per server, one asyncio loop each): the device protocol and
nothing else, so that ten thousand of them fit beside the servers on one machine.

1. BOOT. Every device enrols (RegisterDevice), fetches its manifest, reads the model
   (ReadModel, a cut stream resumed), checks its sha256, reports it (ReportStatus); at
   most ``--in-flight`` boots at once per process. Printed: booted, verified, failed by
   error, wall seconds, boot p50/p99.
2. WATCH AND HOLD. Every booted device opens WatchModel at once (as after a delivery
   restart) and heartbeats every ``--heartbeat-seconds``; printed: how long until every
   stream had its first answer. Then ``--hold-seconds`` of steady state: the registry's
   CPU per heartbeat and delivery's per open stream.
3. PUSH. An operator rolls the fleet back to the profile's other model (PinFleet with
   rollback, as ``ofa-fleet fleets rollback`` does); printed: how long until every
   watching device was told, with the p50 and p99 device. A pin goes to the whole fleet
   at once.

   With ``--staged CANARY_PERCENT`` the fleet is a staged one instead (failure threshold
   50%, ``--min-success-reports``), booted on the current model alone, a search service
   runs beside (``--checkpoint``, a local Ray) and delivery's reconciler with it, which
   makes the profile's first model before the devices boot. The push is an operator
   tightening the profile's budget (``--staged-budget-factor``, UpdateProfile): search
   makes a new model, the reconciler stores it, the rollout starts. Devices follow what
   they are told (read, verify, report the model with ``--report-latency-ms``). Printed:
   when delivery started the rollout and promoted it (from its log), and when each
   device was told and ran the new model, canaries first.

For every RPC, over the phase it ran in: calls that succeeded and per second, latency
p50/p99/p99.9, failed attempts by status code (retried ones included), bytes received.
For each server and phase: CPU seconds per wall second (1.0 = one core busy) and
resident memory at the end. The devices share this machine's cores with the servers, so
CPU per call (server CPU seconds / calls) is the figure that carries to other machines,
not calls per second. Ceilings for the same calls are measured by
``bench/registry_load.py`` (a bare grpc.aio server for RegisterDevice and Heartbeat)
and ``bench/delivery_fleet.py`` (bare grpc.aio and nginx + wrk for model bytes).

Run (about 4 minutes for 10,000 devices on 2 cores, plus the first training)::

    .venv/bin/python bench/fleet_load.py [--devices 10000] [--processes 4] \\
        [--hold-seconds 60] [--heartbeat-seconds 30] [--arch min] [--staged 5] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))  # tests.databases, for --postgres

import delivery_fleet  # noqa: E402
from download_load import nearest_rank  # noqa: E402
from fleet_servers import (  # noqa: E402
    OPERATOR_TOKEN,
    DeliveryFiles,
    LoggedProcess,
    Operator,
    delivery_process,
    publish_model,
    registry_process,
    service_process,
)

from ofa_fleet.delivery.store.blobs import FileBlobStore  # noqa: E402
from ofa_fleet.serving.client import bearer  # noqa: E402
from ofa_fleet.v1 import delivery_pb2, registry_pb2  # noqa: E402
from tests.databases import postgres_schema  # noqa: E402

FLEET = "load"
PHASE_TIMEOUT_S = 1800.0
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
say = delivery_fleet.say


class ServerUse:
    """CPU seconds and resident memory of a server process, read from /proc."""

    def __init__(self, process: LoggedProcess) -> None:
        assert process.process is not None
        self.pid = process.process.pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime

    def rss_bytes(self) -> int:
        return int(Path(f"/proc/{self.pid}/statm").read_text().split()[1]) * PAGE


class Devices:
    """The device processes, driven phase by phase (see ``fleet_devices.py``)."""

    def __init__(
        self,
        args: argparse.Namespace,
        registry: str,
        deliveries: list[str],
        token: str,
        next_sha: str,
    ) -> None:
        follow = ["--follow", "--report-latency-ms", str(args.report_latency_ms)]
        share = math.ceil(args.devices / args.processes)
        self.processes: list[subprocess.Popen[str]] = []
        for index, first in enumerate(range(0, args.devices, share)):
            delivery = deliveries[index % len(deliveries)]  # each process one replica
            self.processes.append(
                subprocess.Popen(
                    [
                        *(sys.executable, str(BENCH / "fleet_devices.py")),
                        *("--registry", registry, "--delivery", delivery),
                        *("--fleet-token", token, "--next-sha256", next_sha),
                        *("--first", str(first), "--count", str(min(share, args.devices - first))),
                        *("--channels", str(args.channels), "--in-flight", str(args.in_flight)),
                        *("--heartbeat-seconds", str(args.heartbeat_seconds)),
                        *("--told-timeout", str(args.told_timeout)),
                        *(follow if args.staged else []),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=BENCH.parent,
                )
            )
        self.answers()  # each says it is ready

    def phase(self, name: str) -> list[dict[str, Any]]:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(name + "\n")
            process.stdin.flush()
        return self.answers()

    def answers(self) -> list[dict[str, Any]]:
        answers = []
        for process in self.processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"a device process exited (code {process.wait()})")
            answers.append(json.loads(line))
        return answers

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def merge_rpcs(answers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for answer in answers:
        for rpc, figures in answer["rpcs"].items():
            into = merged.setdefault(rpc, {"seconds": [], "errors": {}, "bytes": 0, "messages": 0})
            into["seconds"] += figures["seconds"]
            into["bytes"] += figures["bytes"]
            into["messages"] += figures["messages"]
            for code, count in figures["errors"].items():
                into["errors"][code] = into["errors"].get(code, 0) + count
    return merged


def rpc_rows(rpcs: dict[str, dict[str, Any]], seconds: dict[str, float]) -> list[dict[str, Any]]:
    """One row per RPC; rates over the phase the RPC ran in (``seconds[rpc]``)."""
    rows = []
    for rpc, figures in rpcs.items():
        latencies = sorted(figures["seconds"])
        wall = seconds.get(rpc, 0.0)
        rows.append(
            {
                "rpc": rpc,
                "calls": len(latencies),
                "calls_per_s": len(latencies) / wall if wall else 0.0,
                "messages": figures["messages"],
                "bytes": figures["bytes"],
                "bytes_per_s": figures["bytes"] / wall if wall else 0.0,
                "p50_ms": 1000 * nearest_rank(latencies, 50),
                "p99_ms": 1000 * nearest_rank(latencies, 99),
                "p999_ms": 1000 * nearest_rank(latencies, 99.9),
                "errors": figures["errors"],
                "phase_seconds": wall,
            }
        )
    return rows


def use_between(
    servers: dict[str, ServerUse], before: dict[str, float], seconds: float
) -> dict[str, Any]:
    return {
        name: {
            "cpu_seconds": round(use.cpu_seconds() - before[name], 2),
            "cores": round((use.cpu_seconds() - before[name]) / seconds, 3) if seconds else 0.0,
            "rss_mib": round(use.rss_bytes() / 2**20, 1),
        }
        for name, use in servers.items()
    }


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    delivery_fleet.ensure_checkpoint(args.checkpoint)
    current = delivery_fleet.export_model(args.checkpoint, args.arch)
    earlier = delivery_fleet.export_model(args.checkpoint, args.earlier_arch)
    if earlier["sha256"] == current["sha256"]:
        raise SystemExit("--arch and --earlier-arch export the same model; name two")
    return run_fleet(args, folder, current, earlier)


def run_fleet(
    args: argparse.Namespace, folder: Path, current: dict[str, Any], earlier: dict[str, Any]
) -> dict[str, Any]:
    """The three phases, with `current` the profile's model and `earlier` the one before
    it (``onnx``, ``sha256``, ``bytes``, ``arch``, ``supernet_version`` each)."""
    result: dict[str, Any] = {
        "devices": args.devices,
        "processes": args.processes,
        "cores": os.cpu_count(),
        "model_bytes": current["bytes"],
        "database": "postgresql" if args.postgres else "sqlite",
        "delivery_replicas": args.delivery_replicas,
        "load_before": delivery_fleet.load_average(),
    }
    with contextlib.ExitStack() as stack:
        registry_db = delivery_db = ""
        if args.postgres:
            registry_db = stack.enter_context(postgres_schema())
            delivery_db = stack.enter_context(postgres_schema())
        registry = stack.enter_context(registry_process(folder, registry_db))
        operator = Operator(registry.address)
        try:
            profile = operator.create_profile(args.profile)
            token = operator.create_fleet(FLEET, profile, staged_policy(args))
        finally:
            operator.close()
        files = DeliveryFiles(folder / "delivery", delivery_db)
        if not args.staged:  # the history's order: rollback pins `earlier`
            for model in (earlier, current):
                publish_model(
                    files, profile, model["onnx"], model["arch"], model["supernet_version"]
                )
        with_search: tuple[str, ...] = ()
        if args.staged:
            say("starting search (local Ray) for the staged push")
            search = stack.enter_context(
                service_process(
                    *("search", "--checkpoint", str(args.checkpoint)),
                    *("--registry", registry.address),
                    start_timeout_s=900.0,
                )
            )
            with_search = ("--search", search.address)
        deliveries = [
            stack.enter_context(delivery_process(files, registry.address, *with_search))
            for _ in range(args.delivery_replicas)
        ]
        if args.staged:
            say("waiting for the reconciler's first model of the profile")
            first = deliveries[0].wait_for("specialized", 900.0)
            result["model_bytes"] = FileBlobStore(files.blobs).size(first["sha256"])
        servers = {"registry": ServerUse(registry)}
        for index, delivery in enumerate(deliveries):
            servers[f"delivery-{index}" if len(deliveries) > 1 else "delivery"] = ServerUse(
                delivery
            )
        say(f"starting {args.processes} device processes for {args.devices:,} devices")
        # A staged push's model is search's to make: devices wait for any other model.
        next_sha = "" if args.staged else earlier["sha256"]
        devices = Devices(args, registry.address, [d.address for d in deliveries], token, next_sha)
        push = (
            functools.partial(tighten_push, registry.address, profile, args.staged_budget_factor)
            if args.staged
            else functools.partial(pin_push, deliveries[0].address)
        )
        try:
            result.update(
                drive(args, devices, servers, push, deliveries, FileBlobStore(files.blobs))
            )
        finally:
            devices.close()
    result["load_after"] = delivery_fleet.load_average()
    return result


def staged_policy(args: argparse.Namespace) -> registry_pb2.RolloutPolicy | None:
    if not args.staged:
        return None
    return registry_pb2.RolloutPolicy(
        staged=registry_pb2.StagedRollout(
            canary_percent=args.staged,
            failure_threshold_percent=50,
            min_success_reports=args.min_success_reports,
        )
    )


def pin_push(delivery: str) -> float:
    """Roll the fleet back to the profile's earlier model; when the pin was asked for."""
    with delivery_fleet.delivery_operator_stub(delivery) as stub:
        pushed_at = time.time()
        stub.PinFleet(
            delivery_pb2.PinFleetRequest(fleet=f"fleets/{FLEET}", rollback=True),
            metadata=bearer(OPERATOR_TOKEN),
            timeout=60,
        )
    return pushed_at


def tighten_push(registry: str, profile: str, factor: float) -> float:
    """Tighten the profile's latency budget (UpdateProfile): delivery's reconciler has
    search make a new model, which the staged fleet then rolls out; when it was asked."""
    operator = Operator(registry)
    try:
        pushed_at = time.time()
        operator.scale_budget(profile, factor)
    finally:
        operator.close()
    return pushed_at


def rollout_moments(deliveries: list[LoggedProcess], pushed_at: float) -> dict[str, Any]:
    """Seconds from the push to each state delivery logged for the rollout (the first
    replica to log it), as its log reader saw the lines."""
    moments: dict[str, float] = {}
    for delivery in deliveries:
        for entry in delivery.logged("rollout"):
            state = str(entry.get("state")).rsplit(".", 1)[-1].lower()  # RolloutState.CANARY
            seen = float(entry["seen_at"]) - pushed_at
            if seen >= 0 and (state not in moments or seen < moments[state]):
                moments[state] = round(seen, 3)
                if state == "canary":
                    moments["canaries"] = int(entry.get("canaries", 0))
    return moments


def pushed_model_bytes(
    deliveries: list[LoggedProcess], blobs: FileBlobStore, pushed_at: float
) -> int | None:
    """The size of the model the reconciler stored after the push (from its log)."""
    for entry in deliveries[0].logged("specialized"):
        if float(entry["seen_at"]) >= pushed_at:
            return blobs.size(str(entry["sha256"]))
    return None


def drive(
    args: argparse.Namespace,
    devices: Devices,
    servers: dict[str, ServerUse],
    push: Callable[[], float],
    deliveries: list[LoggedProcess],
    blobs: FileBlobStore,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    say(f"1. boot: {args.devices:,} devices enrol, download, verify, report")
    before = {name: use.cpu_seconds() for name, use in servers.items()}
    boots = devices.phase("boot")
    boot_seconds = max(b["seconds"] for b in boots)
    failed: dict[str, int] = {}
    for boot in boots:
        for error, count in boot["failed"].items():
            failed[error] = failed.get(error, 0) + count
    times = sorted(t for b in boots for t in b["boot_seconds"])
    out["boot"] = {
        "seconds": round(boot_seconds, 2),
        "booted": sum(b["booted"] for b in boots),
        "verified": sum(b["verified"] for b in boots),
        "failed": failed,
        "boot_p50_s": round(nearest_rank(times, 50), 3),
        "boot_p99_s": round(nearest_rank(times, 99), 3),
        "servers": use_between(servers, before, boot_seconds),
    }
    say(f"2. watch: {out['boot']['booted']:,} devices open WatchModel and heartbeat")
    before = {name: use.cpu_seconds() for name, use in servers.items()}
    started = time.perf_counter()
    watching = devices.phase("watch")
    open_seconds = time.perf_counter() - started
    out["watch"] = {
        "watching": sum(w["watching"] for w in watching),
        "seconds": round(open_seconds, 2),
        "servers": use_between(servers, before, open_seconds),
    }
    say(f"   hold {args.hold_seconds:g} s: idle streams, heartbeats every "
        f"{args.heartbeat_seconds:g} s")  # fmt: skip
    before = {name: use.cpu_seconds() for name, use in servers.items()}
    beats_before = sum(c["heartbeats"] for c in devices.phase("count"))
    started = time.perf_counter()
    time.sleep(args.hold_seconds)
    beats = sum(c["heartbeats"] for c in devices.phase("count")) - beats_before
    hold_seconds = time.perf_counter() - started
    used = use_between(servers, before, hold_seconds)
    out["hold"] = {
        "seconds": round(hold_seconds, 1),
        "heartbeats": beats,
        "heartbeats_per_s": round(beats / hold_seconds, 1),
        "registry_cpu_us_per_heartbeat": round(
            1e6 * used["registry"]["cpu_seconds"] / beats if beats else 0.0, 1
        ),
        "delivery_cpu_us_per_stream_second": round(
            1e6
            * sum(u["cpu_seconds"] for n, u in used.items() if n.startswith("delivery"))
            / (out["watch"]["watching"] * hold_seconds),
            2,
        ),
        "servers": used,
    }
    if args.staged:
        say(f"3. push: a new current model, staged ({args.staged}% canaries first)")
    else:
        say("3. push: the fleet is rolled back to the profile's earlier model (PinFleet)")
    before = {name: use.cpu_seconds() for name, use in servers.items()}
    pushed_at = push()
    told = devices.phase("told")
    delays = sorted(t - pushed_at for answer in told for t in answer["told_at"])
    running = sorted(t - pushed_at for answer in told for t in answer["running_at"])
    follow_failed: dict[str, int] = {}
    for answer in told:
        for error, count in answer["follow_failed"].items():
            follow_failed[error] = follow_failed.get(error, 0) + count
    push_seconds = time.time() - pushed_at
    booted = out["boot"]["booted"]
    per_device = {
        name: 1e3 * use["cpu_seconds"] / booted if booted else 0.0
        for name, use in out["boot"]["servers"].items()
    }
    out["boot"]["cpu_ms_per_device"] = {
        "registry": round(per_device["registry"], 2),
        "delivery": round(sum(v for n, v in per_device.items() if n.startswith("delivery")), 2),
    }
    out["push"] = {
        "watching": sum(t["watching"] for t in told),
        "told": len(delays),
        "p50_s": round(nearest_rank(delays, 50), 3),
        "p99_s": round(nearest_rank(delays, 99), 3),
        "all_told_s": round(delays[-1], 3) if delays else None,
        "servers": use_between(servers, before, push_seconds),
    }
    if args.staged:
        out["push"]["staged"] = {
            "canary_percent": args.staged,
            "min_success_reports": args.min_success_reports,
            "rollout": rollout_moments(deliveries, pushed_at),
            "model_bytes": pushed_model_bytes(deliveries, blobs, pushed_at),
            "running": len(running),
            "running_p50_s": round(nearest_rank(running, 50), 3),
            "all_running_s": round(running[-1], 3) if running else None,
            "told_s": [round(d, 3) for d in delays],
            "follow_failed": follow_failed,
        }
    rpcs = merge_rpcs(devices.phase("stop"))
    followed = push_seconds if args.staged else 0.0  # devices read and report the push too
    phase_of = {
        "RegisterDevice": boot_seconds,
        "GetModelManifest": boot_seconds,
        "ReadModel": boot_seconds + followed,
        "ReportStatus": boot_seconds + followed,
        "Heartbeat": open_seconds + hold_seconds + push_seconds,
        "WatchModel": open_seconds + hold_seconds + push_seconds,
    }
    out["rpcs"] = rpc_rows(rpcs, phase_of)
    return out


def print_result(result: dict[str, Any]) -> None:
    console = Console()
    boot, watch, hold, push = (result[k] for k in ("boot", "watch", "hold", "push"))
    console.print(
        f"{result['devices']:,} lean devices in {result['processes']} processes, one registry "
        f"and {result['delivery_replicas']} delivery ({result['database']}), "
        f"model {result['model_bytes']:,} bytes, "
        f"{result['cores']} cores; load average before {result['load_before']}, "
        f"after {result['load_after']}"
    )
    console.print(
        f"1. boot: {boot['booted']:,} booted, {boot['verified']:,} verified by sha256, "
        f"failed {sum(boot['failed'].values())} {boot['failed'] or ''} in {boot['seconds']} s "
        f"({boot['booted'] / boot['seconds']:,.0f} devices/s); boot p50 {boot['boot_p50_s']} s, "
        f"p99 {boot['boot_p99_s']} s; server CPU per device boot: registry "
        f"{boot['cpu_ms_per_device']['registry']} ms, delivery "
        f"{boot['cpu_ms_per_device']['delivery']} ms"
    )
    console.print(
        f"2. watch: {watch['watching']:,} WatchModel streams open after {watch['seconds']} s; "
        f"then held {hold['seconds']} s: {hold['heartbeats']:,} heartbeats "
        f"({hold['heartbeats_per_s']:,}/s), registry CPU {hold['registry_cpu_us_per_heartbeat']:,}"
        f" µs per heartbeat, delivery CPU {hold['delivery_cpu_us_per_stream_second']} µs per "
        "open stream per second (each server's whole CPU over the hold)"
    )
    if "staged" in push:
        staged = push["staged"]
        rollout = staged["rollout"]
        canaries = rollout.get("canaries", 0)
        told = staged["told_s"]
        console.print(
            f"3. push (budget tightened, staged rollout, {staged['canary_percent']}% canaries, "
            f"{staged['min_success_reports']} successes to promote; new model "
            f"{staged['model_bytes'] or 0:,} bytes): rollout started {rollout.get('canary')} s "
            f"after the push ({canaries:,} canaries), the last canary told "
            f"{told[canaries - 1] if 0 < canaries <= len(told) else None} s, promoted "
            f"{rollout.get('promoted')} s, rolled back {rollout.get('rolled_back')}; "
            f"{push['told']:,} of {push['watching']:,} told (p50 {push['p50_s']} s, all "
            f"{push['all_told_s']} s), {staged['running']:,} ran it (p50 "
            f"{staged['running_p50_s']} s, all {staged['all_running_s']} s), failed "
            f"{sum(staged['follow_failed'].values())}"
        )
    else:
        console.print(
            f"3. push (PinFleet rollback): {push['told']:,} of {push['watching']:,} watching "
            f"devices told; p50 {push['p50_s']} s, p99 {push['p99_s']} s, all "
            f"{push['all_told_s']} s"
        )
    table = Table(title="Calls, over the phase each ran in (WatchModel: manifests received)")
    table.add_column("rpc", no_wrap=True)
    for column in ("calls", "calls/s", "MB/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"):
        table.add_column(column, justify="right")
    for row in result["rpcs"]:
        if row["rpc"] == "WatchModel":
            table.add_row(
                "WatchModel", f"{row['messages']:,}", "", "", "", "", "",
                ", ".join(f"{k} {v}" for k, v in row["errors"].items()) or "0",
            )  # fmt: skip
            continue
        table.add_row(
            row["rpc"],
            f"{row['calls']:,}",
            f"{row['calls_per_s']:,.0f}",
            f"{row['bytes_per_s'] / 1e6:,.1f}" if row["bytes"] else "",
            f"{row['p50_ms']:,.1f}",
            f"{row['p99_ms']:,.1f}",
            f"{row['p999_ms']:,.1f}",
            ", ".join(f"{k} {v}" for k, v in row["errors"].items()) or "0",
        )
    console.print(table)
    servers = Table(title="Servers: CPU (cores busy) / resident MiB at the end of each phase")
    names = list(boot["servers"])
    servers.add_column("phase")
    servers.add_column("seconds", justify="right")
    for name in names:
        servers.add_column(name, justify="right", no_wrap=True)
    for label, phase, seconds in (
        ("boot", boot, boot["seconds"]),
        ("watch", watch, watch["seconds"]),
        ("hold", hold, hold["seconds"]),
        ("push", push, push["all_told_s"]),
    ):
        cells = [label, f"{seconds}"]
        for name in names:
            use = phase["servers"][name]
            cells.append(f"{use['cores']:.2f} / {use['rss_mib']:,.0f}")
        servers.add_row(*cells)
    console.print(servers)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--channels", type=int, default=8, help="per server, per process")
    parser.add_argument("--in-flight", type=int, default=64, help="boots at once, per process")
    parser.add_argument("--hold-seconds", type=float, default=60.0)
    parser.add_argument("--heartbeat-seconds", type=float, default=30.0)
    parser.add_argument("--checkpoint", type=Path, default=delivery_fleet.DEFAULT_CHECKPOINT)
    parser.add_argument("--arch", default="min", help="the current model's subnet")
    parser.add_argument("--earlier-arch", default="max", help="the model before it")
    parser.add_argument(
        "--profile", type=Path, default=delivery_fleet.PROFILES / "raspberry-pi-4.yaml"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="registry and delivery on this machine's PostgreSQL (a fresh schema each; "
        "OFA_FLEET_TEST_POSTGRES names the database) instead of SQLite",
    )
    parser.add_argument(
        "--delivery-replicas", type=int, default=1, help="device processes split among them"
    )
    parser.add_argument(
        "--staged",
        type=int,
        default=0,
        metavar="CANARY_PERCENT",
        help="a staged fleet, and the push a new current model (see 3. PUSH)",
    )
    parser.add_argument("--min-success-reports", type=int, default=50)
    parser.add_argument(
        "--told-timeout",
        type=float,
        default=300.0,
        help="how long the push waits for every device to be told (and, staged, to run it)",
    )
    parser.add_argument(
        "--staged-budget-factor",
        type=float,
        default=0.5,
        help="the staged push multiplies the profile's budget by this (a new model); where "
        "search finds the current model fits the tighter budget too, the push makes no new "
        "model and no rollout starts (rollout started None): pick a smaller factor",
    )
    parser.add_argument(
        "--report-latency-ms",
        type=float,
        default=1.0,
        help="what following devices report as measured (within the profile's budget)",
    )
    parser.add_argument("--json", action="store_true")
    return parser


def main() -> int:
    args = parser().parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-load-") as folder:
        result = run(args, Path(folder))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
