"""The same model file over HTTP: nginx serving it, wrk fetching it at the same concurrency.

This is what an operator could put in front of devices for the bytes alone (no device
authentication, no manifest, no signature), so it marks how far delivery is from a
static file server on the same machine. nginx runs as the current user from a
configuration written into a temporary folder (``daemon off``, its pid, logs and
temporary files there, one or two workers, a free loopback port, ``sendfile`` on, access
log off); wrk reports through a small Lua script as one JSON line, so nothing is parsed
from its human-readable table.

``serving`` also serves a delivery blob folder as it is laid out on disk
(``AB/ABCD...onnx``) at ``/models/<sha256>``: the content-addressed URL a manifest names
in artifact mode (``serve delivery --model-url http://HOST/models/{sha256}``), with
nginx's own Range support for resumes. deploy/README.md shows the same location block.

Both come from Debian: ``apt-get install -y nginx wrk``.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL_HINT = "apt-get install -y nginx wrk"
START_TIMEOUT_S = 10.0

# wrk calls done() once at the end; latency figures are in microseconds.
REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,'
    .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def missing_tools() -> list[str]:
    return [tool for tool in ("nginx", "wrk") if _which(tool) is None]


def _which(tool: str) -> str | None:
    # nginx lives in /usr/sbin, which a non-root PATH may lack.
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def blob_location(blobs: Path) -> str:
    """An nginx location serving a delivery blob folder by sha256 (a regex location's
    `alias` must name its captures)."""
    return f"""location ~ "^/models/([0-9a-f]{{2}})([0-9a-f]{{62}})$" {{
            alias {blobs.resolve()}/$1/$1$2.onnx;
        }}"""


def nginx_conf(
    root: Path, port: int, workers: int, connections: int, blobs: Path | None = None
) -> str:
    """A self-contained nginx.conf: everything it writes stays under `root`; with `blobs`,
    that blob folder at ``/models/<sha256>`` too."""
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    models = blob_location(blobs) if blobs is not None else ""
    return f"""{user}worker_processes {workers};
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
worker_rlimit_nofile {connections * 4 + 64};
events {{
    worker_connections {connections * 2 + 64};
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    types {{ application/octet-stream onnx; }}
    server {{
        listen 127.0.0.1:{port} backlog={connections * 2};
        root {root}/www;
        {models}
    }}
}}
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    bytes: int
    errors: int
    error_kinds: dict[str, int]
    p50_seconds: float
    p99_seconds: float

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> WrkResult:
        kinds = {
            k: int(report[k])
            for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
            if int(report[k])
        }
        return cls(
            requests=int(report["requests"]),
            seconds=report["duration_us"] / 1e6,
            bytes=int(report["bytes"]),
            errors=sum(kinds.values()),
            error_kinds=kinds,
            p50_seconds=report["p50_us"] / 1e6,
            p99_seconds=report["p99_us"] / 1e6,
        )


def parse_report(stdout: str) -> dict[str, Any]:
    """The JSON line REPORT_LUA wrote, among wrk's own output."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"requests"' in line:
            return dict(json.loads(line))
    raise RuntimeError(f"wrk printed no report:\n{stdout[-2000:]}")


@contextlib.contextmanager
def serving(
    folder: Path, workers: int, connections: int, blobs: Path | None = None
) -> Iterator[int]:
    """nginx serving `folder`/www (and `blobs`, see the module docstring) on a free
    loopback port, which it yields; stopped on exit."""
    (folder / "www").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(nginx_conf(folder, port, workers, connections, blobs))
    nginx = subprocess.Popen(
        [
            _which("nginx") or "nginx",
            "-c",
            str(conf),
            "-p",
            str(folder),
            "-e",
            str(folder / "error.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_listening(port, nginx)
        yield port
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)


def measure(
    model: bytes, folder: Path, concurrency: int, seconds: float, workers: int, threads: int
) -> dict[str, Any]:
    """nginx serving `model` under `folder`, fetched by wrk for `seconds` (whole seconds,
    at least one: wrk's unit); downloads/s, bytes/s, latency, errors."""
    (folder / "www").mkdir(parents=True, exist_ok=True)
    (folder / "www" / "model.onnx").write_bytes(model)
    (folder / "report.lua").write_text(REPORT_LUA)
    with serving(folder, workers, concurrency) as port:
        url = f"http://127.0.0.1:{port}/model.onnx"
        ran = subprocess.run(
            [
                _which("wrk") or "wrk",
                *("-c", str(concurrency), "-t", str(threads), "-d", f"{max(1, round(seconds))}s"),
                *("--timeout", "30s", "-s", str(folder / "report.lua"), url),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        if ran.returncode != 0:
            raise RuntimeError(f"wrk failed (exit {ran.returncode}): {ran.stderr.strip()}")
    result = WrkResult.from_report(parse_report(ran.stdout))
    body_bytes = result.requests * len(model)
    return {
        "concurrency": concurrency,
        "seconds": round(result.seconds, 3),
        "downloads": result.requests,
        "downloads_per_s": result.requests / result.seconds,
        "bytes": body_bytes,
        "bytes_per_s": body_bytes / result.seconds,
        "wire_bytes": result.bytes,
        "errors": result.errors,
        "error_kinds": result.error_kinds,
        "p50_seconds": result.p50_seconds,
        "p99_seconds": result.p99_seconds,
        "nginx_workers": workers,
        "wrk_threads": threads,
    }


def _wait_listening(port: int, nginx: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if nginx.poll() is not None:
            raise RuntimeError(f"nginx exited: {nginx.stderr.read() if nginx.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on port {port} within {START_TIMEOUT_S:g} s")
