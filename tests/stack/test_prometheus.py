"""A real Prometheus scrapes `ofa-fleet up` on loopback and answers a coverage query.

`up` starts its three servers with /metrics on free ports and prints where; simulated
devices boot against it; Prometheus (Debian's, see tests/tools.py) scrapes every second,
its data in the test's tmp folder, and is stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from ofa_fleet.fleet.simulator import SimulationSettings, simulate_fleet
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.v1 import registry_pb2
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests import tools
from tests.registry.conftest import example_profile
from tests.registry.server_thread import bearer
from tests.stack.test_up import SERVICES, Up

pytestmark = [pytest.mark.slow, pytest.mark.integration]

DEVICES = 3
FLEET = "scraped"


def test_prometheus_scrapes_up_and_answers_the_fleets_coverage(
    stack_checkpoint: Path, tmp_path: Path
) -> None:
    up = Up(tmp_path / "stack", stack_checkpoint)
    try:
        ready = up.ready()
        metrics = ready["metrics"]
        assert set(metrics) == set(SERVICES) and all(metrics.values()), metrics
        token = Path(ready["operator_token_file"]).read_text().strip()
        enrolment = _fleet(ready["registry"], token)
        summary = asyncio.run(
            simulate_fleet(
                SimulationSettings(
                    registry=ready["registry"],
                    delivery=ready["delivery"],
                    fleet_token=enrolment,
                    devices=DEVICES,
                    state_root=tmp_path / "devices",
                    deadline_seconds=400,
                )
            )
        )
        assert summary.booted == DEVICES, summary.errors()
        with _prometheus(tmp_path / "prometheus", metrics) as query:
            for job in SERVICES:
                _eventually(lambda j=job: _values(query(f'up{{job="ofa-fleet-{j}"}}')) == [1.0])
            coverage = f'ofa_fleet_fleet_coverage_ratio{{fleet="{FLEET}"}}'
            _eventually(lambda: _values(query(coverage)) == [1.0])
            (series,) = query(coverage)
            assert series["metric"]["job"] == "ofa-fleet-delivery"
            registered = query(f'ofa_fleet_devices_registered{{fleet="{FLEET}"}}')
            assert _values(registered) == [DEVICES]
            boots = query("sum(ofa_fleet_boot_to_model_seconds_count)")
            assert _values(boots) == [DEVICES]
            served = query("sum(ofa_fleet_models_served_total)")
            assert _values(served) == [DEVICES]
        up.process.send_signal(signal.SIGTERM)
        assert up.wait(120) == 0, up.stderr()
    finally:
        up.kill()


def _fleet(registry_address: str, token: str) -> str:
    """A profile and a fleet of it; the fleet's enrolment token."""
    with grpc.insecure_channel(registry_address) as channel:
        stub = RegistryServiceStub(channel)
        stub.CreateProfile(
            registry_pb2.CreateProfileRequest(profile=profile_to_proto(example_profile())),
            metadata=bearer(token),
            timeout=10,
        )
        created = stub.CreateFleet(
            registry_pb2.CreateFleetRequest(
                fleet_id=FLEET,
                fleet=registry_pb2.Fleet(profile=f"profiles/{example_profile().name}"),
            ),
            metadata=bearer(token),
            timeout=10,
        )
        return created.enrolment_token


Query = Callable[[str], list[dict[str, Any]]]


@contextmanager
def _prometheus(folder: Path, targets: dict[str, str]) -> Iterator[Query]:
    folder.mkdir()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": f"ofa-fleet-{name}", "static_configs": [{"targets": [address]}]}
            for name, address in targets.items()
        ],
    }
    (folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = _free_port()
    server = subprocess.Popen(
        [
            str(tools.prometheus()),
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "prometheus.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"

    def query(expr: str) -> list[dict[str, Any]]:
        url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    try:
        _eventually(lambda: _ready(base), what="Prometheus to be ready")
        yield query
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _values(result: list[dict[str, Any]]) -> list[float]:
    return [float(series["value"][1]) for series in result]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _eventually(check: Callable[[], object], timeout: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what or 'the query'}"
        time.sleep(0.5)
