"""Delivery under a booting fleet: served and verified, how fast, against what ceilings.

Every server is a real ``ofa-fleet serve`` process on loopback with SQLite in a temporary
folder (``bench/fleet_servers.py``); profiles and fleets are created through the
registry's gRPC API with the operator token. Part 4 runs first, because the model
search makes there for profile ``--profile`` is the model parts 1-3 serve: the bytes a
fleet of that profile really gets. It is signed with delivery's key and written into a
fresh delivery store before delivery starts, as its reconciler would have left it. With
``--arch`` (or when part 4 is skipped) a subnet exported from ``--checkpoint`` is served
instead (``min`` is about 1.2 MB on the digits supernet, ``max`` about 4.4 MB; the export
is kept beside the checkpoint). The checkpoint is trained on ``digits`` on first use
(about a minute per phase on an idle machine).

1. FLEET BOOT. ``--devices`` simulated devices (`ofa_fleet.fleet.simulator`: the real
   device agent each, own state folder, one process, one asyncio loop) boot at once
   against one delivery: enrol, GetModelManifest, ReadModel, verify sha256 and signature,
   install, load in onnxruntime, smoke inference, time it briefly, report. Printed:
   booted and verified (each installed model checked again on disk), failures by error,
   boot-to-model p50 and p99, model bytes per second over the whole boot. The simulated
   device's own CPU work is measured alone too (``smoke_test`` of the same model, as the
   simulator times it, in this process): N times that, against the boot's wall time, says
   how much of the boot is this machine playing devices rather than delivery serving
   them.
2. STREAMING CEILING, SAME CONCURRENCY (``--concurrency``, default = ``--devices``). A
   lean `grpc.aio` client (``bench/download_load.py``: ``--clients`` processes, one
   channel each, one enrolled device per stream, sha256 checked per download, nothing
   else) downloads (GetModelManifest, ReadModel) in a loop for ``--seconds`` against (a)
   delivery, for each chunk size of ``--chunk-sizes`` (``serve delivery --chunk-bytes``;
   a fresh process each) and (b) a bare `grpc.aio` server streaming the same bytes from
   memory in the same chunk size with the same messages (no interceptors, no auth, no
   store); then (c) nginx serving the same file over HTTP to ``wrk -c CONCURRENCY -t 2``
   (``bench/nginx_wrk.py``; skipped with a message when nginx or wrk is missing:
   ``apt-get install -y nginx wrk``). Each server is measured ``--repeats`` times,
   delivery and bare alternating which goes first, and the best run is kept (others' load
   on a shared machine only ever slows a run; every run's figure is in the JSON).
   Printed: model bytes/s (chunk bytes received in the window) and whole models/s derived
   from them, failures; ratios delivery/bare per chunk size and best delivery/nginx; the
   fastest chunk size. Per-download latencies are in the JSON, but only over downloads
   that completed within the window: at 1,000 streams one download can take about as long
   as the window, so they are a censored sample.
2b. ARTIFACT MODE (when nginx is installed). nginx serves delivery's blob folder at
   ``/models/<sha256>`` and delivery is started again with ``--model-url`` naming it;
   the same lean clients take the signed manifest from delivery over gRPC and the bytes
   from the URL it names (``download_load.py --mode url``), against the same clients
   fetching that URL alone (``--mode http``, no manifest): what artifact mode costs a
   download beside the plain file server. Also set against wrk's figure from part 2, a
   C client that hashes nothing, so the Python clients' own cost shows.
3. RESUME. A device's ReadModel is cut once half the model has arrived; a second
   ReadModel from ``read_offset`` must send exactly the rest (chunk bytes counted, first
   offset checked, the joined bytes' sha256 checked). The same through the device agent:
   a stream cut at half way inside one boot, and what its report says it downloaded in
   all.
4. PROFILE CREATED -> FIRST DEVICE RUNS ITS MODEL. Registry, search (``--checkpoint``,
   local Ray) and delivery with its reconciler, each a process; then, timed from the
   CreateProfile call: a profile (``--profile``'s YAML, renamed) and a fleet are
   created, one device agent boots (it watches WatchModel while the reconciler
   specializes). Breakdown: created -> reconciler's Specialize started, Specialize
   (from delivery's "specialized" log line), model stored -> device's first good
   inference (GetProfileModels' history gives when the model became current).
   Server start-up (Ray, the accuracy predictor fitted once beside the checkpoint) is
   not counted; it is printed apart.

The load average is printed before and after: on a shared 2-core machine, ratios taken
in one run are the figures to read, not absolute rates.

Run (about 15 minutes on a busy 2-core machine, plus the first training)::

    .venv/bin/python bench/delivery_fleet.py [--devices 1000] [--checkpoint CKPT] \\
        [--arch ARCH] [--seconds 10] [--repeats 2] [--chunk-sizes 65536,262144,1048576] \\
        [--clients 2] [--skip-boot] [--skip-streaming] [--skip-resume] \\
        [--skip-time-to-model] [--json]

``--json`` prints one JSON object on stdout instead of the tables; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grpc import aio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import download_load  # noqa: E402
import nginx_wrk  # noqa: E402
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

from ofa_fleet.agent.backoff import Backoff, TransientError  # noqa: E402
from ofa_fleet.agent.boot import BootSettings  # noqa: E402
from ofa_fleet.agent.connections import Endpoints  # noqa: E402
from ofa_fleet.agent.download import DownloadTimeouts  # noqa: E402
from ofa_fleet.agent.identity import load_identity  # noqa: E402
from ofa_fleet.agent.runner import Agent, AgentConfig  # noqa: E402
from ofa_fleet.agent.smoke import smoke_test  # noqa: E402
from ofa_fleet.serving.channel_options import CLIENT_OPTIONS  # noqa: E402
from ofa_fleet.serving.client import bearer  # noqa: E402
from ofa_fleet.v1 import delivery_pb2, delivery_pb2_grpc  # noqa: E402

DEFAULT_CHECKPOINT = ROOT / "runs" / "bench" / "digits-supernet.ckpt"
PROFILES = ROOT / "deploy" / "profiles"
FLEET = "bench"
KiB = 1024
MB = 1_000_000
FAST_BACKOFF = Backoff(initial_seconds=0.05, cap_seconds=0.5)
SMOKE_SAMPLES = 20

progress_console = Console(stderr=True)


def say(text: str) -> None:
    progress_console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- the model ----------------------------------------------------------------------


def ensure_checkpoint(path: Path) -> None:
    if path.is_file():
        return
    say(f"training a digits supernet into {path} (first use, one epoch per phase)")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            *(sys.executable, "-m", "ofa_fleet.cli.main", "train", "--data", "digits"),
            *("--out", str(path), "--epochs-per-phase", "1"),
        ],
        check=True,
        cwd=ROOT,
    )


def export_model(checkpoint_path: Path, arch_text: str) -> dict[str, Any]:
    """A real subnet of the supernet as verified ONNX bytes, and where it came from.

    Kept beside the checkpoint (``CKPT.bench-<digest>.onnx`` and ``.json``) and reused
    while the checkpoint's version matches: an export takes a minute on a busy machine.
    """
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.subnet import export_subnet, materialize, resolve_arch
    from ofa_fleet.training.checkpoint_data import load_checkpoint_data

    started = time.perf_counter()
    checkpoint = load_checkpoint(checkpoint_path)
    digest = hashlib.sha256(arch_text.encode()).hexdigest()[:12]
    onnx_file = checkpoint_path.with_name(f"{checkpoint_path.name}.bench-{digest}.onnx")
    meta_file = onnx_file.with_suffix(".json")
    if onnx_file.is_file() and meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        onnx = onnx_file.read_bytes()
        if meta["supernet_version"] == checkpoint.version and meta["sha256"] == sha256(onnx):
            return {**meta, "onnx": onnx, "source": f"export of {arch_text!r} (kept)"}
    arch = resolve_arch(arch_text, checkpoint)
    splits = load_checkpoint_data(checkpoint)
    exported = export_subnet(checkpoint, materialize(checkpoint.supernet, arch, splits), splits)
    meta = {
        "sha256": exported.sha256,
        "bytes": len(exported.onnx_bytes),
        "arch": str(arch),
        "supernet_version": checkpoint.version,
    }
    onnx_file.write_bytes(exported.onnx_bytes)
    meta_file.write_text(json.dumps(meta))
    return {
        **meta,
        "onnx": exported.onnx_bytes,
        "export_seconds": round(time.perf_counter() - started, 2),
        "source": f"export of {arch_text!r}",
    }


def model_of_device(state_dir: Path) -> dict[str, Any]:
    """The model a booted device installed (part 4's: what search made for the profile)."""
    from ofa_fleet.agent.install import ModelDirectory

    installed = ModelDirectory(state_dir).installed()
    if installed is None:
        raise RuntimeError(f"the device in {state_dir} installed no model")
    onnx = installed.path.read_bytes()
    return {
        "onnx": onnx,
        "sha256": sha256(onnx),
        "bytes": len(onnx),
        "arch": installed.manifest.arch,
        "supernet_version": installed.manifest.supernet_version,
        "source": "search, for the profile (part 4)",
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the servers a part runs against --------------------------------------------------


class Stage:
    """A registry with the profile and fleet, and delivery's store holding the model."""

    def __init__(self, folder: Path, model: dict[str, Any], profile_path: Path) -> None:
        self.folder = folder
        self.model = model
        self.profile_path = profile_path
        self.files = DeliveryFiles(folder / "delivery")
        self.registry = registry_process(folder)
        self.fleet_token = ""
        self.profile = ""

    def __enter__(self) -> Stage:
        self.registry.__enter__()
        try:
            operator = Operator(self.registry.address)
            try:
                self.profile = operator.create_profile(self.profile_path)
                self.fleet_token = operator.create_fleet(FLEET, self.profile)
            finally:
                operator.close()
            publish_model(
                self.files,
                self.profile,
                self.model["onnx"],
                self.model["arch"],
                self.model["supernet_version"],
            )
        except BaseException:
            self.registry.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.registry.stop()

    def delivery(self, chunk_bytes: int, *extra: str) -> LoggedProcess:
        return delivery_process(
            self.files, self.registry.address, "--chunk-bytes", str(chunk_bytes), *extra
        )


# --- 1. fleet boot ----------------------------------------------------------------------


def fleet_boot(stage: Stage, devices: int, chunk_bytes: int, deadline_s: float) -> dict[str, Any]:
    from ofa_fleet.fleet.simulator import SimulationSettings, simulate_fleet

    with stage.delivery(chunk_bytes) as delivery:
        settings = SimulationSettings(
            registry=stage.registry.address,
            delivery=delivery.address,
            fleet_token=stage.fleet_token,
            devices=devices,
            state_root=stage.folder / "devices",
            deadline_seconds=deadline_s,
            hardware_id_prefix="bench",
        )
        say(f"booting {devices} simulated devices at once against delivery {delivery.address}")
        load_before = load_average()
        with Progress(
            TextColumn("[bold]devices booted"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=progress_console,
            transient=True,
        ) as bar:
            task = bar.add_task("boot", total=devices)
            summary = asyncio.run(simulate_fleet(settings, on_outcome=lambda _: bar.advance(task)))
        load_after = load_average()
    smoke = smoke_cost(stage.folder / "devices", summary)
    result = summary.to_dict()
    result.pop("outcomes")
    result["bytes_per_s"] = summary.bytes_downloaded / summary.wall_seconds
    result["chunk_bytes"] = chunk_bytes
    result["load_before"] = load_before
    result["load_after"] = load_after
    result["smoke"] = smoke
    result["smoke"]["share_of_wall"] = (
        smoke["seconds_per_device"] * summary.booted / summary.wall_seconds
    )
    return result


def smoke_cost(state_root: Path, summary: Any) -> dict[str, Any]:
    """A simulated device's own CPU work for its model, alone: onnxruntime load, smoke
    inference and the brief timing, as the simulator runs them (one thread)."""
    from ofa_fleet.agent.install import ModelDirectory
    from ofa_fleet.fleet.simulator import SIMULATION_TIMING

    booted = next((o for o in summary.outcomes if o.ok), None)
    if booted is None:
        return {"seconds_per_device": 0.0, "samples": 0}
    installed = ModelDirectory(state_root / f"device-{booted.index:05d}").installed()
    assert installed is not None
    samples = []
    for _ in range(SMOKE_SAMPLES):
        started = time.perf_counter()
        result = smoke_test(installed.path, 1, SIMULATION_TIMING)
        samples.append((time.perf_counter() - started, result.load_seconds, result.runs))
    return {
        "seconds_per_device": statistics.median(s[0] for s in samples),
        "load_seconds": statistics.median(s[1] for s in samples),
        "timing_runs": statistics.median(s[2] for s in samples),
        "samples": SMOKE_SAMPLES,
    }


# --- 2. streaming ceiling -------------------------------------------------------------


def enrolled_devices(stage: Stage, count: int) -> list[tuple[str, str]]:
    """`count` enrolled devices: the booted fleet's identities, topped up by new ones."""
    devices: list[tuple[str, str]] = []
    root = stage.folder / "devices"
    for index in range(count):
        identity = load_identity(root / f"device-{index:05d}") if root.is_dir() else None
        if identity is None:
            break
        devices.append((identity.name, identity.device_token))
    if len(devices) < count:
        operator = Operator(stage.registry.address)
        try:
            devices += operator.register_devices(stage.fleet_token, count - len(devices), "load")
        finally:
            operator.close()
    return devices


def run_clients(
    target: str,
    devices_file: Path,
    concurrency: int,
    clients: int,
    seconds: float,
    model: dict[str, Any],
    mode: str = "grpc",
    url: str = "",
) -> dict[str, Any]:
    """``clients`` lean client processes, warmed up, then started together; ``mode`` and
    ``url`` as ``download_load.py client`` takes them."""
    shares = [concurrency // clients + (i < concurrency % clients) for i in range(clients)]
    processes = []
    first = 0
    for share in shares:
        processes.append(
            subprocess.Popen(
                [
                    *(sys.executable, str(BENCH / "download_load.py"), "client"),
                    *("--target", target, "--devices", str(devices_file)),
                    *("--first-device", str(first), "--concurrency", str(share)),
                    *("--seconds", str(seconds), "--sha256", model["sha256"]),
                    *("--mode", mode, *(("--url", url) if url else ())),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
        )
        first += share
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"a load client did not get ready (said {line!r})")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            out, _ = process.communicate(timeout=seconds + 300)
            if process.returncode != 0:
                raise RuntimeError(f"a load client failed (exit {process.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return download_load.merge_clients(results, model["bytes"])


def bare_server(model_file: Path, chunk_bytes: int) -> LoggedProcess:
    return LoggedProcess(
        "bare",
        [
            *(sys.executable, str(BENCH / "download_load.py"), "bare-server"),
            *("--model", str(model_file), "--chunk-bytes", str(chunk_bytes)),
        ],
    )


def streaming(
    stage: Stage,
    model: dict[str, Any],
    chunk_sizes: list[int],
    concurrency: int,
    clients: int,
    seconds: float,
    repeats: int,
    nginx_workers: int,
) -> dict[str, Any]:
    devices_file = stage.folder / "load-devices.json"
    devices_file.write_text(json.dumps(enrolled_devices(stage, concurrency)))
    model_file = stage.folder / "model.onnx"
    model_file.write_bytes(model["onnx"])
    rows: dict[str, dict[str, Any]] = {}
    for chunk in chunk_sizes:
        row: dict[str, Any] = {"load_before": load_average()}
        runs: dict[str, list[dict[str, Any]]] = {"delivery": [], "bare": []}
        with stage.delivery(chunk) as delivery, bare_server(model_file, chunk) as bare:
            servers = {"delivery": delivery, "bare": bare}
            for repeat in range(repeats):
                # Alternate which goes first, so that drift in the machine's load hits both.
                for kind in ("delivery", "bare") if repeat % 2 == 0 else ("bare", "delivery"):
                    say(
                        f"downloads x{concurrency} from {kind}, {chunk // KiB} KiB chunks, "
                        f"{seconds:g} s ({repeat + 1}/{repeats})"
                    )
                    runs[kind].append(
                        run_clients(
                            servers[kind].address,
                            devices_file,
                            concurrency,
                            clients,
                            seconds,
                            model,
                        )
                    )
        for kind, done in runs.items():
            row[kind] = best_run(done)
        row["delivery_over_bare"] = ratio(
            row["delivery"]["bytes_per_s"], row["bare"]["bytes_per_s"]
        )
        rows[str(chunk)] = row
    best = max(chunk_sizes, key=lambda c: rows[str(c)]["delivery"]["bytes_per_s"])
    result: dict[str, Any] = {
        "concurrency": concurrency,
        "clients": clients,
        "seconds": seconds,
        "repeats": repeats,
        "model_bytes": model["bytes"],
        "chunks": rows,
        "best_chunk_bytes": best,
    }
    missing = nginx_wrk.missing_tools()
    if missing:
        result["nginx"] = {
            "skipped": f"{' and '.join(missing)} not installed ({nginx_wrk.INSTALL_HINT})"
        }
        say(f"[yellow]nginx row skipped: {result['nginx']['skipped']}[/yellow]")
        return result
    say(f"nginx ({nginx_workers} workers) to wrk -c {concurrency} -t 2, {seconds:g} s")
    nginx_runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="nginx-") as folder:
            nginx_runs.append(
                nginx_wrk.measure(
                    model["onnx"], Path(folder), concurrency, seconds, nginx_workers, threads=2
                )
            )
    nginx = dict(max(nginx_runs, key=lambda r: r["bytes_per_s"]))
    nginx["runs_bytes_per_s"] = [r["bytes_per_s"] for r in nginx_runs]
    nginx["errors"] = sum(r["errors"] for r in nginx_runs)
    result["nginx"] = nginx
    result["best_delivery_over_nginx"] = ratio(
        rows[str(best)]["delivery"]["bytes_per_s"], result["nginx"]["bytes_per_s"]
    )
    result["best_bare_over_nginx"] = ratio(
        rows[str(best)]["bare"]["bytes_per_s"], result["nginx"]["bytes_per_s"]
    )
    result["artifact"] = artifact_mode(
        stage, model, best, devices_file, concurrency, clients, seconds, repeats, nginx_workers
    )
    result["artifact"]["over_wrk"] = ratio(
        result["artifact"]["artifact"]["bytes_per_s"], result["nginx"]["bytes_per_s"]
    )
    return result


def artifact_mode(
    stage: Stage,
    model: dict[str, Any],
    chunk_bytes: int,
    devices_file: Path,
    concurrency: int,
    clients: int,
    seconds: float,
    repeats: int,
    nginx_workers: int,
) -> dict[str, Any]:
    """Manifests from delivery, bytes from nginx serving delivery's blob folder (``serve
    delivery --model-url``), against the same lean clients fetching the same URL from
    nginx alone: what the signed manifest over gRPC costs a download in artifact mode."""
    runs: dict[str, list[dict[str, Any]]] = {"artifact": [], "nginx": []}
    with (
        tempfile.TemporaryDirectory(prefix="nginx-blobs-") as folder,
        nginx_wrk.serving(Path(folder), nginx_workers, concurrency, stage.files.blobs) as port,
    ):
        template = f"http://127.0.0.1:{port}/models/{{sha256}}"
        url = template.replace("{sha256}", model["sha256"])
        with stage.delivery(chunk_bytes, "--model-url", template) as delivery:
            for repeat in range(repeats):
                for kind in ("artifact", "nginx") if repeat % 2 == 0 else ("nginx", "artifact"):
                    say(
                        f"downloads x{concurrency}, artifact mode: "
                        + ("manifest from delivery, " if kind == "artifact" else "")
                        + f"bytes from nginx, {seconds:g} s ({repeat + 1}/{repeats})"
                    )
                    runs[kind].append(
                        run_clients(
                            delivery.address,
                            devices_file,
                            concurrency,
                            clients,
                            seconds,
                            model,
                            mode="url" if kind == "artifact" else "http",
                            url="" if kind == "artifact" else url,
                        )
                    )
    result = {kind: best_run(done) for kind, done in runs.items()}
    result["url_template"] = template
    result["over_nginx"] = ratio(result["artifact"]["bytes_per_s"], result["nginx"]["bytes_per_s"])
    return result


def best_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the most bytes/s, with every run's bytes/s beside it: on a shared
    machine, others' load only ever slows a run down, so the best is the nearest to what
    the server can do."""
    best = dict(max(runs, key=lambda r: r["bytes_per_s"]))
    best["runs_bytes_per_s"] = [r["bytes_per_s"] for r in runs]
    best["failures"] = merged_failures(runs)
    return best


def merged_failures(runs: list[dict[str, Any]]) -> dict[str, int]:
    failures: dict[str, int] = {}
    for run in runs:
        for error, count in run["failures"].items():
            failures[error] = failures.get(error, 0) + count
    return failures


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


# --- 3. resume -------------------------------------------------------------------------


async def cut_and_resume(
    delivery: str, device: tuple[str, str], expected_sha256: str
) -> dict[str, Any]:
    """ReadModel cut once half the model has arrived, then resumed from what arrived."""
    name, token = device
    async with aio.insecure_channel(delivery, options=CLIENT_OPTIONS) as channel:
        stub = delivery_pb2_grpc.DeliveryServiceStub(channel)
        received = bytearray()
        size = 0
        answer = await stub.GetModelManifest(
            delivery_pb2.GetModelManifestRequest(device=name),
            metadata=bearer(token),
            timeout=60,
        )
        size = answer.manifest.size_bytes
        call = stub.ReadModel(
            delivery_pb2.ReadModelRequest(sha256=answer.manifest.sha256),
            metadata=bearer(token),
            timeout=60,
        )
        async for message in call:
            received += message.chunk.data
            if len(received) >= size / 2:
                break
        call.cancel()
        offset = len(received)
        resumed = bytearray()
        first_offset = None
        call = stub.ReadModel(
            delivery_pb2.ReadModelRequest(sha256=expected_sha256, read_offset=offset),
            metadata=bearer(token),
            timeout=60,
        )
        async for message in call:
            if first_offset is None:
                first_offset = message.chunk.offset
            resumed += message.chunk.data
    whole = bytes(received + resumed)
    return {
        "model_bytes": size,
        "cut_at": offset,
        "bytes_after_resume": len(resumed),
        "expected_after_resume": size - offset,
        "first_resumed_offset": first_offset,
        "sha256_ok": sha256(whole) == expected_sha256,
    }


def agent_resume(stage: Stage, delivery: str, size: int) -> dict[str, Any]:
    """One device agent whose stream is cut once at half way, within one boot."""
    cuts: list[int] = []

    def cut_once(on_disk: int, total: int) -> None:
        if not cuts and on_disk >= total / 2:
            cuts.append(on_disk)
            raise TransientError("stream cut at half way")  # as a dropped connection would

    from ofa_fleet.fleet.simulator import SIMULATION_TIMING

    config = AgentConfig(
        state_dir=stage.folder / "resume-agent",
        endpoints=Endpoints(registry=stage.registry.address, delivery=delivery),
        fleet_token=stage.fleet_token,
        hardware_id="bench-resume",
        boot=BootSettings(
            backoff=FAST_BACKOFF,
            download=DownloadTimeouts(call_seconds=60),
            timing=SIMULATION_TIMING,
        ),
    )
    report = asyncio.run(Agent(config, on_chunk=cut_once, handle_signals=False).run(once=True)).boot
    return {
        "cut_at": cuts[0] if cuts else None,
        "resumed_from": report.resumed_from,
        "bytes_downloaded": report.bytes_downloaded,
        "model_bytes": size,
        "model_sha256": report.model_sha256,
    }


def resume(stage: Stage, model: dict[str, Any], chunk_bytes: int) -> dict[str, Any]:
    operator = Operator(stage.registry.address)
    try:
        device = operator.register_devices(stage.fleet_token, 1, "resume")[0]
    finally:
        operator.close()
    with stage.delivery(chunk_bytes) as delivery:
        say("resume: ReadModel cut at half way, then resumed")
        raw = asyncio.run(cut_and_resume(delivery.address, device, model["sha256"]))
        agent = agent_resume(stage, delivery.address, model["bytes"])
    raw["chunk_bytes"] = chunk_bytes
    agent["ok"] = (
        agent["model_sha256"] == model["sha256"]
        and agent["resumed_from"] == agent["cut_at"]
        and agent["bytes_downloaded"] == model["bytes"]
    )
    return {"protocol": raw, "agent": agent}


# --- 4. profile created -> first device runs its model ----------------------------------


def time_to_model(folder: Path, checkpoint: Path, profile_path: Path) -> dict[str, Any]:
    files = DeliveryFiles(folder / "delivery")
    started = time.perf_counter()
    with registry_process(folder) as registry:
        say("starting search (local Ray; fits the accuracy predictor on first use)")
        search = service_process(
            "search", "--checkpoint", str(checkpoint), "--registry", registry.address,
            start_timeout_s=900.0,
        )  # fmt: skip
        with (
            search,
            delivery_process(files, registry.address, "--search", search.address) as delivery,
        ):
            startup = time.perf_counter() - started
            say("creating a profile and a fleet; one device boots")
            result = create_and_boot(folder, registry.address, delivery, profile_path)
            result["startup_seconds"] = round(startup, 1)
            return result


def create_and_boot(
    folder: Path, registry: str, delivery: LoggedProcess, profile_path: Path
) -> dict[str, Any]:
    operator = Operator(registry)
    try:
        created = time.time()
        profile = operator.create_profile(profile_path, name="bench-first-device")
        fleet_token = operator.create_fleet("bench-first", profile)
    finally:
        operator.close()
    agent_started = time.time()
    config = AgentConfig(
        state_dir=folder / "first-device",
        endpoints=Endpoints(registry=registry, delivery=delivery.address),
        fleet_token=fleet_token,
        hardware_id="bench-first",
        boot=BootSettings(backoff=FAST_BACKOFF),
    )
    report = asyncio.run(Agent(config, handle_signals=False).run(once=True)).boot
    runs_model = agent_started + report.seconds_to_model
    with delivery_operator_stub(delivery.address) as stub:
        answer = stub.GetProfileModels(
            delivery_pb2.GetProfileModelsRequest(name=f"profiles/{profile}"),
            metadata=bearer(OPERATOR_TOKEN),
            timeout=30,
        )
    stored = answer.history[0].change_time.ToMicroseconds() / 1e6 if answer.history else 0.0
    specialized = [e for e in delivery.logged("specialized") if e.get("profile") == profile]
    specialize_s = float(specialized[0]["seconds"]) if specialized else 0.0
    return {
        "profile": profile,
        "seconds": runs_model - created,
        "created_to_specialize_start": stored - specialize_s - created if stored else None,
        "specialize_seconds": specialize_s,
        "stored_to_device_runs_model": runs_model - stored if stored else None,
        "device_seconds_to_model": report.seconds_to_model,
        "model_sha256": report.model_sha256,
        "model_bytes": report.bytes_downloaded,
        "arch": report.arch,
        "latency_ms": report.latency_ms,
    }


@contextmanager
def delivery_operator_stub(address: str) -> Iterator[delivery_pb2_grpc.DeliveryServiceStub]:
    import grpc

    channel = grpc.insecure_channel(address)
    try:
        yield delivery_pb2_grpc.DeliveryServiceStub(channel)
    finally:
        channel.close()


# --- output ----------------------------------------------------------------------------


def mb(value: float) -> str:
    return f"{value / MB:,.1f}"


def print_tables(result: dict[str, Any]) -> None:
    console = Console()
    model = result["model"]
    console.print(
        f"model: {model['bytes']:,} bytes ({model['source']}: {model['arch']}), "
        f"load average before {result['load_before']}, after {result['load_after']}, "
        f"{result['cores']} cores"
    )
    if "boot" in result:
        boot = result["boot"]
        table = Table(title=f"1. {boot['devices']:,} devices booting at once, one delivery")
        for column in ("booted", "verified", "failed", "p50 s", "p99 s", "MB/s", "wall s"):
            table.add_column(column, justify="right")
        table.add_row(
            f"{boot['booted']:,}",
            f"{boot['verified']:,}",
            f"{boot['failed']:,}",
            f"{boot['p50_seconds']:.2f}",
            f"{boot['p99_seconds']:.2f}",
            mb(boot["bytes_per_s"]),
            f"{boot['wall_seconds']:.1f}",
        )
        console.print(table)
        smoke = boot["smoke"]
        console.print(
            f"   a device's own onnxruntime work (load, smoke, {smoke.get('timing_runs', 0):g} "
            f"timed runs) alone: {smoke['seconds_per_device'] * 1000:.1f} ms; x{boot['booted']} "
            f"= {smoke['share_of_wall']:.0%} of the boot's wall time"
        )
        for error, count in boot["errors"].items():
            console.print(f"   [red]{count} x {error}[/red]")
    if "streaming" in result:
        print_streaming(console, result["streaming"])
    if "resume" in result:
        raw, agent = result["resume"]["protocol"], result["resume"]["agent"]
        console.print(
            f"3. resume ({raw['chunk_bytes'] // KiB} KiB chunks): cut at {raw['cut_at']:,} of "
            f"{raw['model_bytes']:,} bytes; resumed call sent {raw['bytes_after_resume']:,} "
            f"(the rest: {raw['expected_after_resume']:,}), from offset "
            f"{raw['first_resumed_offset']}, sha256 {'ok' if raw['sha256_ok'] else 'WRONG'}. "
            f"Device agent: cut at {agent['cut_at']:,}, resumed from {agent['resumed_from']:,}, "
            f"{agent['bytes_downloaded']:,} bytes downloaded in all "
            f"({'ok' if agent['ok'] else 'NOT as expected'})"
        )
    if "time_to_model" in result:
        t = result["time_to_model"]
        parts = []
        if t["created_to_specialize_start"] is not None:
            parts = [
                f"to Specialize start {t['created_to_specialize_start']:.1f} s",
                f"Specialize {t['specialize_seconds']:.1f} s",
                f"stored to device running it {t['stored_to_device_runs_model']:.1f} s",
            ]
        console.print(
            f"4. profile created -> first device runs its model: {t['seconds']:.1f} s "
            f"({'; '.join(parts)}); servers' start-up, not counted: {t['startup_seconds']} s"
        )


def print_streaming(console: Console, s: dict[str, Any]) -> None:
    table = Table(
        title=f"2. Model download streaming, {s['concurrency']:,} concurrent downloads of "
        f"{s['model_bytes']:,} bytes, {s['clients']} client processes, best of "
        f"{s['repeats']} x {s['seconds']:g} s"
    )
    # Completed downloads are a censored sample (at this concurrency one download can last
    # about as long as the window), so rates are given as model bytes per second, and as
    # whole models per second derived from them.
    for column in ("server", "chunk", "MB/s", "models/s", "failed", "runs MB/s", "vs bare"):
        table.add_column(column, justify="right")
    for chunk, row in s["chunks"].items():
        for kind in ("delivery", "bare"):
            r = row[kind]
            table.add_row(
                kind,
                f"{int(chunk) // KiB} KiB",
                mb(r["bytes_per_s"]),
                f"{r['bytes_per_s'] / s['model_bytes']:,.0f}",
                f"{sum(r['failures'].values())}",
                " ".join(mb(x) for x in r["runs_bytes_per_s"]),
                f"{row['delivery_over_bare']:.2f}" if kind == "delivery" else "",
            )
    nginx = s["nginx"]
    if "skipped" in nginx:
        table.add_row("nginx + wrk", "", "skipped", nginx["skipped"], "", "", "")
    else:
        table.add_row(
            "nginx + wrk",
            "HTTP",
            mb(nginx["bytes_per_s"]),
            f"{nginx['bytes_per_s'] / s['model_bytes']:,.0f}",
            f"{nginx['errors']}",
            " ".join(mb(x) for x in nginx["runs_bytes_per_s"]),
            "",
        )
    console.print(table)
    line = f"   fastest chunk for delivery: {s['best_chunk_bytes'] // KiB} KiB"
    if "best_delivery_over_nginx" in s:
        line += (
            f"; delivery/nginx {s['best_delivery_over_nginx']:.3f}, "
            f"bare grpc/nginx {s['best_bare_over_nginx']:.3f}"
        )
    console.print(line)
    if "artifact" in s:
        print_artifact(console, s)


def print_artifact(console: Console, s: dict[str, Any]) -> None:
    a = s["artifact"]
    table = Table(
        title=f"2b. Artifact mode: {s['concurrency']:,} concurrent downloads, the same lean "
        f"clients, best of {s['repeats']} x {s['seconds']:g} s"
    )
    for column in ("bytes from nginx", "MB/s", "models/s", "failed", "runs MB/s", "vs nginx"):
        table.add_column(column, justify="right")
    for kind, label in (
        ("artifact", "signed manifest from delivery (gRPC), then GET"),
        ("nginx", "GET alone (no manifest)"),
    ):
        r = a[kind]
        table.add_row(
            label,
            mb(r["bytes_per_s"]),
            f"{r['bytes_per_s'] / s['model_bytes']:,.0f}",
            f"{sum(r['failures'].values())}",
            " ".join(mb(x) for x in r["runs_bytes_per_s"]),
            f"{a['over_nginx']:.2f}" if kind == "artifact" else "",
        )
    console.print(table)
    console.print(
        f"   artifact mode/wrk {a['over_wrk']:.3f} (wrk: a C client that checks nothing; "
        "these Python clients hash every byte on the same cores)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument(
        "--concurrency", type=int, default=0, help="streams in part 2 (default: --devices)"
    )
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument(
        "--arch",
        help="subnet served in parts 1-3: max, min, random or an arch (default: the model "
        "search made in part 4, or min when part 4 is skipped)",
    )
    parser.add_argument("--profile", type=Path, default=PROFILES / "raspberry-pi-4.yaml")
    parser.add_argument("--seconds", type=float, default=10.0, help="per streaming run")
    parser.add_argument("--repeats", type=int, default=2, help="streaming runs per server")
    parser.add_argument("--chunk-sizes", default="65536,262144,1048576")
    parser.add_argument("--boot-chunk-bytes", type=int, default=64 * KiB)
    parser.add_argument("--clients", type=int, default=2, help="load client processes")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=900.0, help="fleet boot deadline, s")
    parser.add_argument("--skip-boot", action="store_true")
    parser.add_argument("--skip-streaming", action="store_true")
    parser.add_argument("--skip-resume", action="store_true")
    parser.add_argument("--skip-time-to-model", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    chunk_sizes = [int(c) for c in args.chunk_sizes.split(",") if c]
    concurrency = args.concurrency or args.devices

    # Device agents warn on stderr when a stream is cut (part 3 cuts one on purpose).
    logging.getLogger("ofa_fleet").addHandler(logging.NullHandler())
    result: dict[str, Any] = {"cores": os.cpu_count(), "load_before": load_average()}
    ensure_checkpoint(args.checkpoint)
    with tempfile.TemporaryDirectory(prefix="delivery-fleet-") as tmp:
        folder = Path(tmp)
        model = None
        if not args.skip_time_to_model:
            (folder / "ttm").mkdir()
            result["time_to_model"] = time_to_model(folder / "ttm", args.checkpoint, args.profile)
            if args.arch is None:
                model = model_of_device(folder / "ttm" / "first-device")
        if model is None:
            arch = args.arch or "min"
            say(f"exporting subnet {arch!r} of {args.checkpoint}")
            model = export_model(args.checkpoint, arch)
        result["model"] = {k: v for k, v in model.items() if k != "onnx"}
        with Stage(folder / "stage", model, args.profile) as stage:
            if not args.skip_boot:
                result["boot"] = fleet_boot(
                    stage, args.devices, args.boot_chunk_bytes, args.deadline
                )
            if not args.skip_resume:
                result["resume"] = resume(stage, model, args.boot_chunk_bytes)
            if not args.skip_streaming:
                result["streaming"] = streaming(
                    stage,
                    model,
                    chunk_sizes,
                    concurrency,
                    args.clients,
                    args.seconds,
                    args.repeats,
                    args.nginx_workers,
                )
    result["load_after"] = load_average()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_tables(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
