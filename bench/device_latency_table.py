"""A profile whose devices measure their own latency table: how long until a device runs a
model predicted from it, and how far each prediction is from what the device measures.

Real processes on this machine, as an operator runs them: `ofa-fleet serve` registry,
search (local Ray) and delivery, and one device, `ofa-fleet device run` (no --once), of
a profile with `measure_on_devices: true`. The bench creates the profile and its fleet,
starts the device and watches, every half second:

1. the first model (predicted by the analytic roofline: the profile has no table yet)
   running on the device;
2. the device's table in the registry (profile revision 2), measured with the agent's
   default settings;
3. the profile's model for revision 2 (predicted from the table) current and running.

It prints the seconds from the profile's creation to each, and for both models the
predicted latency, its source, what the device measured running it (the agent's smoke
timing) and their ratio. The device is this machine, so "measured" is this machine's
onnxruntime at the profile's thread count.

    python bench/device_latency_table.py [--profile deploy/profiles/x86-gateway.yaml]
        [--checkpoint runs/demo/supernet.ckpt] [--timeout 1200] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from fleet_servers import (  # noqa: E402
    OPERATOR_TOKEN,
    DeliveryFiles,
    delivery_process,
    registry_process,
    service_process,
)
from search_specialize import DEFAULT_CHECKPOINT, ensure_checkpoint  # noqa: E402

from ofa_fleet.contract.manifest import Manifest  # noqa: E402
from ofa_fleet.hardware.profile_file import load_profile  # noqa: E402
from ofa_fleet.hardware.profile_proto import profile_to_proto  # noqa: E402
from ofa_fleet.serving.client import bearer  # noqa: E402
from ofa_fleet.v1 import (  # noqa: E402
    delivery_pb2,
    delivery_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
)

DEFAULT_PROFILE = ROOT / "deploy" / "profiles" / "x86-gateway.yaml"
FLEET = "bench-measuring"
OPERATOR = bearer(OPERATOR_TOKEN)
progress = Console(stderr=True)


def say(text: str) -> None:
    progress.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")


class Watch:
    """The registry's and delivery's view of the profile and its one device."""

    def __init__(self, registry: str, delivery: str, profile: str) -> None:
        self.profile = profile
        self._channels = [grpc.insecure_channel(registry), grpc.insecure_channel(delivery)]
        self.registry = registry_pb2_grpc.RegistryServiceStub(self._channels[0])
        self.delivery = delivery_pb2_grpc.DeliveryServiceStub(self._channels[1])

    def revision(self) -> int:
        answer = self.registry.GetProfile(
            registry_pb2.GetProfileRequest(
                name=f"profiles/{self.profile}", view=registry_pb2.PROFILE_VIEW_BASIC
            ),
            metadata=OPERATOR,
            timeout=30,
        )
        return int(answer.profile.revision)

    def current(self) -> Manifest | None:
        answer = self.delivery.GetProfileModels(
            delivery_pb2.GetProfileModelsRequest(name=f"profiles/{self.profile}"),
            metadata=OPERATOR,
            timeout=30,
        )
        if not answer.HasField("current"):
            return None
        return Manifest.from_bytes(answer.current.canonical_manifest)

    def device(self) -> registry_pb2.Device | None:
        answer = self.registry.ListDevices(
            registry_pb2.ListDevicesRequest(parent=f"fleets/{FLEET}"), metadata=OPERATOR, timeout=30
        )
        return answer.devices[0] if answer.devices else None

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


def model_row(manifest: Manifest, device: registry_pb2.Device, seconds: float) -> dict[str, Any]:
    predicted = float(manifest.figures.get("predicted_latency_ms", 0.0))
    measured = float(device.status.measured_latency_ms)
    return {
        "seconds_from_profile_created": round(seconds, 1),
        "profile_revision": manifest.profile_revision,
        "arch": manifest.arch,
        "sha256": manifest.sha256,
        "latency_source": manifest.figures.get("latency_source", ""),
        "predicted_ms": round(predicted, 4),
        "device_measured_ms": round(measured, 4),
        "predicted_over_measured": round(predicted / measured, 3) if measured else None,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    checkpoint = ensure_checkpoint(args)
    spec = dataclasses.replace(load_profile(args.profile), measure_on_devices=True)
    folder = Path(tempfile.mkdtemp(prefix="ofa-measure-"))
    files = DeliveryFiles(folder / "delivery")
    result: dict[str, Any] = {"profile": spec.name, "threads": spec.runtime.threads}
    with registry_process(folder) as registry:
        say("starting search (local Ray) and delivery")
        search = service_process(
            "search", "--checkpoint", str(checkpoint), "--registry", registry.address,
            start_timeout_s=900.0,
        )  # fmt: skip
        with (
            search,
            delivery_process(files, registry.address, "--search", search.address) as delivery,
        ):
            watch = Watch(registry.address, delivery.address, spec.name)
            try:
                result.update(
                    measure(args, spec, folder, registry.address, delivery.address, watch)
                )
            finally:
                watch.close()
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return result


def measure(
    args: argparse.Namespace, spec: Any, folder: Path, registry: str, delivery: str, watch: Watch
) -> dict[str, Any]:
    stub = watch.registry
    created = time.monotonic()
    stub.CreateProfile(
        registry_pb2.CreateProfileRequest(profile=profile_to_proto(spec)),
        metadata=OPERATOR,
        timeout=30,
    )
    fleet = stub.CreateFleet(
        registry_pb2.CreateFleetRequest(
            fleet_id=FLEET, fleet=registry_pb2.Fleet(profile=f"profiles/{spec.name}")
        ),
        metadata=OPERATOR,
        timeout=30,
    )
    say(f"profile {spec.name!r} created (measure_on_devices); one device starts")
    log_path = folder / "device.log"
    with log_path.open("w") as log_file:
        device_process = subprocess.Popen(
            [
                sys.executable, "-m", "ofa_fleet.cli.main", "device", "run",
                "--registry", registry, "--delivery", delivery,
                "--fleet-token", fleet.enrolment_token, "--state", str(folder / "device"),
                "--threads", str(spec.runtime.threads), "--log-level", "info",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            return follow(args, watch, created, log_path)
        finally:
            device_process.terminate()
            device_process.wait(timeout=60)


def follow(
    args: argparse.Namespace, watch: Watch, created: float, log_path: Path
) -> dict[str, Any]:
    first: dict[str, Any] | None = None
    table_seconds: float | None = None
    deadline = created + args.timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = time.monotonic() - created
        manifest, device = watch.current(), watch.device()
        running = (
            manifest is not None
            and device is not None
            and device.status.model_sha256 == manifest.sha256
            and device.status.measured_latency_ms > 0
        )
        if first is None and running and manifest is not None and device is not None:
            first = model_row(manifest, device, now)
            say(f"the device runs its first model ({first['latency_source']}) at {now:.1f} s")
        if table_seconds is None and watch.revision() >= 2:
            table_seconds = now
            say(f"the device's latency table is in the registry at {now:.1f} s")
        if (
            first is not None
            and table_seconds is not None
            and running
            and manifest is not None
            and device is not None
            and manifest.profile_revision >= 2
        ):
            second = model_row(manifest, device, now)
            say(f"the device runs the model predicted from its table at {now:.1f} s")
            return {
                "first_model": first,
                "table_in_registry_seconds": round(table_seconds, 1),
                "model_from_table": second,
                "device_log": device_events(log_path),
            }
    raise SystemExit(
        f"not done within {args.timeout:g} s (first model: {first is not None}, table: "
        f"{table_seconds is not None}); the device's log is {log_path}"
    )


def device_events(log_path: Path) -> list[dict[str, Any]]:
    """The device's own lines about its latency table."""
    events = []
    for line in log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "latency table" in str(entry.get("event", "")):
            events.append({k: v for k, v in entry.items() if k not in ("level", "logger")})
    return events


def show(result: dict[str, Any]) -> None:
    console = Console()
    table = Table(title=f"profile {result['profile']} ({result['threads']} thread(s))")
    for column in ("model", "ready at s", "source", "predicted ms", "device ms", "pred/meas"):
        table.add_column(column)
    for label, key in (("first (no table)", "first_model"), ("from its table", "model_from_table")):
        row = result[key]
        table.add_row(
            label,
            f"{row['seconds_from_profile_created']:.1f}",
            str(row["latency_source"]),
            f"{row['predicted_ms']:.3f}",
            f"{row['device_measured_ms']:.3f}",
            str(row["predicted_over_measured"]),
        )
    console.print(table)
    console.print(
        f"table in the registry {result['table_in_registry_seconds']:.1f} s after the profile "
        f"was created; load average {result['load_average']}"
    )
    for event in result["device_log"]:
        console.print(f"device: {event}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", type=Path, default=DEFAULT_PROFILE)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds in all")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        show(result)


if __name__ == "__main__":
    main()
