"""bench/delivery_fleet.py's parts: the lean download client against the bare server, the
nginx configuration and wrk's report, and how several clients' counts are merged."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import delivery_fleet  # noqa: E402
import download_load  # noqa: E402
import nginx_wrk  # noqa: E402


def client_result(seconds: float, bytes_: int, latencies: list[float], **failures: int) -> dict:
    return {
        "concurrency": 3,
        "seconds": seconds,
        "bytes": bytes_,
        "downloads": len(latencies),
        "verified": len(latencies),
        "download_seconds": sorted(latencies),
        "failures": failures,
        "warmup_failures": 0,
    }


def test_clients_merge_into_one_load_over_the_longest_window():
    merged = download_load.merge_clients(
        [
            client_result(2.0, 400, [0.1, 0.3], UNAVAILABLE=1),
            client_result(4.0, 600, [0.2, 0.4, 0.5], UNAVAILABLE=2),
        ],
        model_bytes=100,
    )
    assert merged["bytes_per_s"] == 250.0
    assert merged["downloads"] == 5 and merged["downloads_per_s"] == 1.25
    assert merged["p50_seconds"] == 0.3 and merged["p99_seconds"] == 0.5
    assert merged["failures"] == {"UNAVAILABLE": 3}
    assert merged["concurrency"] == 6 and merged["clients"] == 2


def test_nearest_rank_reports_a_value_that_was_observed():
    values = [float(v) for v in range(1, 101)]
    assert download_load.nearest_rank(values, 50) == 50.0
    assert download_load.nearest_rank(values, 99) == 99.0
    assert download_load.nearest_rank([7.0], 99) == 7.0
    assert download_load.nearest_rank([], 50) == 0.0


def test_wrk_report_is_found_among_wrk_output_and_its_errors_summed():
    stdout = (
        "Running 10s test @ http://127.0.0.1:1/model.onnx\n  2 threads and 1000 connections\n"
        '{"requests":500,"duration_us":2000000,"bytes":150000,"connect_errors":0,'
        '"read_errors":3,"write_errors":0,"status_errors":2,"timeouts":0,'
        '"p50_us":1500,"p99_us":90000}\n'
    )
    result = nginx_wrk.WrkResult.from_report(nginx_wrk.parse_report(stdout))
    assert result.requests == 500 and result.seconds == 2.0
    assert result.errors == 5 and result.error_kinds == {"read_errors": 3, "status_errors": 2}
    assert result.p50_seconds == 0.0015 and result.p99_seconds == 0.09
    with pytest.raises(RuntimeError, match="no report"):
        nginx_wrk.parse_report("Running 10s test\n")


def test_nginx_conf_keeps_everything_it_writes_in_its_folder(tmp_path: Path):
    conf = nginx_wrk.nginx_conf(tmp_path, 18080, workers=2, connections=1000)
    assert "daemon off;" in conf and "worker_processes 2;" in conf
    assert "listen 127.0.0.1:18080 backlog=2000;" in conf
    assert "worker_connections 2064;" in conf
    paths = [w.rstrip(";") for w in conf.split() if w.startswith("/")]
    assert paths and all(p.startswith(str(tmp_path)) for p in paths)


def test_nginx_conf_serves_a_blob_folder_by_sha256(tmp_path: Path):
    blobs = tmp_path / "blobs"
    conf = nginx_wrk.nginx_conf(tmp_path / "nginx", 18080, 1, 10, blobs=blobs)
    assert 'location ~ "^/models/([0-9a-f]{2})([0-9a-f]{62})$"' in conf
    assert f"alias {blobs}/$1/$1$2.onnx;" in conf
    assert "/models/" not in nginx_wrk.nginx_conf(tmp_path / "nginx", 18080, 1, 10)


def test_ratio_of_nothing_is_zero_not_an_error():
    assert delivery_fleet.ratio(3.0, 2.0) == 1.5
    assert delivery_fleet.ratio(3.0, 0.0) == 0.0


@pytest.mark.integration
def test_lean_clients_download_and_verify_from_the_bare_server(tmp_path: Path):
    model = os.urandom(300_000)
    model_file = tmp_path / "model.onnx"
    model_file.write_bytes(model)
    devices = tmp_path / "devices.json"
    devices.write_text(json.dumps([[f"device-{i}", "no-token"] for i in range(4)]))
    described = {"sha256": hashlib.sha256(model).hexdigest(), "bytes": len(model)}
    with delivery_fleet.bare_server(model_file, 64 * 1024) as server:
        merged = delivery_fleet.run_clients(server.address, devices, 4, 2, 0.5, described)
    assert merged["concurrency"] == 4 and merged["clients"] == 2
    assert merged["downloads"] > 0 and merged["verified"] == merged["downloads"]
    assert merged["failures"] == {} and merged["warmup_failures"] == 0
    assert merged["bytes"] >= merged["downloads"] * len(model)


@pytest.mark.integration
@pytest.mark.skipif(bool(nginx_wrk.missing_tools()), reason=nginx_wrk.INSTALL_HINT)
def test_nginx_serves_the_model_to_wrk(tmp_path: Path):
    model = os.urandom(100_000)
    result = nginx_wrk.measure(model, tmp_path, concurrency=8, seconds=0.5, workers=1, threads=1)
    assert result["downloads"] > 0 and result["errors"] == 0
    assert result["wire_bytes"] >= result["downloads"] * len(model)


@pytest.mark.integration
def test_lean_clients_fetch_and_verify_a_url_over_keep_alive_http(tmp_path: Path):
    model = os.urandom(300_000)
    (tmp_path / "model.onnx").write_bytes(model)
    devices = tmp_path / "devices.json"
    devices.write_text(json.dumps([[f"device-{i}", "no-token"] for i in range(4)]))
    described = {"sha256": hashlib.sha256(model).hexdigest(), "bytes": len(model)}
    connections: list[object] = []

    class KeepAlive(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def setup(self) -> None:
            super().setup()
            connections.append(self.connection)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model.onnx"
        merged = delivery_fleet.run_clients(
            "127.0.0.1:1", devices, 4, 2, 0.5, described, mode="http", url=url
        )
    finally:
        server.shutdown()
        server.server_close()
    assert merged["downloads"] > 4 and merged["verified"] == merged["downloads"]
    assert merged["failures"] == {} and merged["warmup_failures"] == 0
    assert len(connections) <= 8  # one connection per worker for warm-up and one to count


@pytest.mark.integration
@pytest.mark.skipif(bool(nginx_wrk.missing_tools()), reason=nginx_wrk.INSTALL_HINT)
def test_nginx_serves_a_delivery_blob_folder_by_sha256_with_ranges(tmp_path: Path):
    from ofa_fleet.delivery.store.blobs import FileBlobStore

    data = os.urandom(50_000)
    sha256 = FileBlobStore(tmp_path / "blobs").put(data)
    with nginx_wrk.serving(tmp_path / "nginx", 1, 4, blobs=tmp_path / "blobs") as port:
        url = f"http://127.0.0.1:{port}/models/{sha256}"
        with urllib.request.urlopen(url, timeout=10) as whole:
            assert whole.read() == data
        ranged = urllib.request.Request(url, headers={"Range": "bytes=20000-"})
        with urllib.request.urlopen(ranged, timeout=10) as rest:
            assert rest.status == 206 and rest.read() == data[20000:]
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url.replace(sha256, "ab" * 32), timeout=10)


@pytest.mark.slow
@pytest.mark.integration
def test_a_small_fleet_boots_and_a_cut_download_resumes_against_real_servers(tmp_path: Path):
    from tests.agent.onnx_models import tiny_onnx

    onnx = tiny_onnx(seed=3)
    model = {
        "onnx": onnx,
        "sha256": hashlib.sha256(onnx).hexdigest(),
        "bytes": len(onnx),
        "arch": "r24_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3",
        "supernet_version": "0123456789abcdef",
    }
    profile = delivery_fleet.PROFILES / "raspberry-pi-4.yaml"
    with delivery_fleet.Stage(tmp_path, model, profile) as stage:
        boot = delivery_fleet.fleet_boot(stage, devices=4, chunk_bytes=4096, deadline_s=120)
        resumed = delivery_fleet.resume(stage, model, chunk_bytes=4096)
    assert boot["booted"] == boot["verified"] == 4 and boot["failed"] == 0
    assert boot["bytes_downloaded"] == 4 * len(onnx)
    assert boot["smoke"]["seconds_per_device"] > 0
    raw = resumed["protocol"]
    assert raw["sha256_ok"]
    assert 0 < raw["cut_at"] < len(onnx) and raw["first_resumed_offset"] == raw["cut_at"]
    assert raw["bytes_after_resume"] == raw["expected_after_resume"] == len(onnx) - raw["cut_at"]
    assert resumed["agent"]["ok"], resumed["agent"]
