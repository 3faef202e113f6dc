"""The services as an operator runs them, for delivery's benchmark: processes, a fleet, a model.

Each server is a real ``ofa-fleet serve SERVICE`` process on a free loopback port (port 0;
the address is read from its JSON "serving" log line), so the figures include everything
a deployment pays: the interceptors, device authentication through the registry, the
store, a log line per call. Its log lines are kept, because some figures (how long a
specialization took) are only in them; the per-call lines are only counted, so that
reading them costs the bench's process as little as possible.

Operator steps go through the registry's gRPC API with the operator token, as the CLI
would; the model a bench serves is written into delivery's own SQLite file and blob
folder with `ModelStore` and `ModelSigner` before delivery starts, as the reconciler
would have left it.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.delivery.migrations import DELIVERY_MIGRATIONS
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.delivery.store.blobs import FileBlobStore
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.hardware.profile_file import load_profile
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.serving.client import bearer
from ofa_fleet.storage.database import Database, DatabaseUrl
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc

OPERATOR_TOKEN = "operator-token-for-the-delivery-bench-0123"
ROOT = Path(__file__).resolve().parent.parent
CALL_TIMEOUT_S = 30.0


class LoggedProcess:
    """A server process that logs JSON lines on stderr, one of them "serving" with its
    address; a context manager that stops it (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], start_timeout_s: float = 120.0) -> None:
        self.service = name
        self.args = argv
        self.env = {**os.environ, "OFA_FLEET_OPERATOR_TOKEN": OPERATOR_TOKEN}
        self.start_timeout_s = start_timeout_s
        self.lines: list[str] = []
        self.calls = 0  # per-call log lines seen
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self.process: subprocess.Popen[str] | None = None
        self.address = ""

    def start(self) -> LoggedProcess:
        self.process = subprocess.Popen(
            self.args,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=self.env,
            cwd=ROOT,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.address = self.wait_for("serving", self.start_timeout_s)["address"]
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            if '"event": "call"' in line:  # one per RPC: counted, never parsed
                self.calls += 1
                continue
            self.lines.append(line)
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                entry = {"event": "text", "line": line}
            if isinstance(entry, dict):
                entry["seen_at"] = time.time()  # the log's own time is to the second
                self.events.append(entry)
                self._queue.put(entry)
        self._queue.put({"event": "exited"})

    def wait_for(self, event: str, timeout_s: float) -> dict[str, Any]:
        """The next log entry whose event is `event`; raises if the server exits first."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                entry = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(
                    f"{self.service}: no {event!r} log line in {timeout_s:g} s; log tail:\n"
                    + "".join(self.lines[-20:])
                ) from None
            if entry.get("event") == event:
                return entry
            if entry.get("event") == "exited":
                raise RuntimeError(
                    f"{self.service} exited before {event!r}; log tail:\n"
                    + "".join(self.lines[-20:])
                )

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout_s)

    def __enter__(self) -> LoggedProcess:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def service_process(service: str, *args: str, start_timeout_s: float = 120.0) -> LoggedProcess:
    """``ofa-fleet serve SERVICE ARGS...`` on a free loopback port."""
    argv = [
        sys.executable, "-m", "ofa_fleet.cli.main", "serve", service,
        "--port", "0", "--grace-seconds", "2", *args,
    ]  # fmt: skip
    return LoggedProcess(service, argv, start_timeout_s)


def registry_process(folder: Path, database: str = "") -> LoggedProcess:
    """The registry on `database` (a URL), or on SQLite in `folder`."""
    return service_process("registry", "--db", database or f"sqlite:///{folder / 'registry.db'}")


@dataclass(frozen=True)
class DeliveryFiles:
    """Delivery's store and key in one folder, shared by every delivery started on it."""

    folder: Path
    database: str = ""  # a database URL; SQLite in `folder` when empty

    @property
    def db_url(self) -> str:
        return self.database or f"sqlite:///{self.folder / 'delivery.db'}"

    @property
    def blobs(self) -> Path:
        return self.folder / "models"

    @property
    def signing_key(self) -> Path:
        return self.folder / "signing.key"

    def args(self, registry: str) -> list[str]:
        return [
            *("--registry", registry, "--db", self.db_url),
            *("--blobs", str(self.blobs), "--signing-key", str(self.signing_key)),
        ]


def delivery_process(
    files: DeliveryFiles, registry: str, *extra: str, start_timeout_s: float = 120.0
) -> LoggedProcess:
    return service_process(
        "delivery", *files.args(registry), *extra, start_timeout_s=start_timeout_s
    )


def publish_model(files: DeliveryFiles, profile: str, onnx: bytes, arch: str, supernet: str) -> str:
    """Store `onnx` as `profile`'s current model, signed with the delivery's key; its sha256.

    Written straight into the delivery's SQLite file and blob folder, before the server
    starts: what a reconciler would have stored, without waiting for one.
    """
    files.folder.mkdir(parents=True, exist_ok=True)
    signer = ModelSigner.load_or_create(files.signing_key)
    database = Database(DatabaseUrl.parse(files.db_url), DELIVERY_MIGRATIONS)
    try:
        database.migrate()
        store = ModelStore(database, FileBlobStore(files.blobs))
        manifest = Manifest(
            sha256=hashlib.sha256(onnx).hexdigest(),
            size_bytes=len(onnx),
            profile_name=profile,
            profile_revision=1,
            supernet_version=supernet,
            arch=arch,
            created_us=time.time_ns() // 1000,
            figures={},
        )
        store.add(manifest, signer.sign(manifest), onnx)
        store.set_current(profile, manifest.sha256, "missing")
    finally:
        database.close()
    return manifest.sha256


class Operator:
    """The registry's operator RPCs a bench needs, with the operator token."""

    def __init__(self, registry: str) -> None:
        self.channel = grpc.insecure_channel(registry)
        self.stub = registry_pb2_grpc.RegistryServiceStub(self.channel)

    def create_profile(self, path: Path, name: str | None = None) -> str:
        """Create the profile in YAML file `path` (renamed `name`); its name."""
        spec = profile_to_proto(load_profile(path))
        if name:
            spec.name = name
        self.stub.CreateProfile(
            registry_pb2.CreateProfileRequest(profile=spec),
            metadata=bearer(OPERATOR_TOKEN),
            timeout=CALL_TIMEOUT_S,
        )
        return spec.name

    def scale_budget(self, profile: str, factor: float) -> float:
        """Multiply `profile`'s latency budget by `factor` (UpdateProfile); the new budget
        in milliseconds."""
        spec = self.stub.GetProfile(
            registry_pb2.GetProfileRequest(name=f"profiles/{profile}"),
            metadata=bearer(OPERATOR_TOKEN),
            timeout=CALL_TIMEOUT_S,
        ).profile.spec
        budget = spec.constraints.latency_budget.ToNanoseconds() * factor
        spec.constraints.latency_budget.FromNanoseconds(int(budget))
        self.stub.UpdateProfile(
            registry_pb2.UpdateProfileRequest(
                profile=spec,
                update_mask=field_mask_pb2.FieldMask(paths=["constraints.latency_budget"]),
            ),
            metadata=bearer(OPERATOR_TOKEN),
            timeout=CALL_TIMEOUT_S,
        )
        return budget / 1e6

    def create_fleet(
        self, name: str, profile: str, rollout: registry_pb2.RolloutPolicy | None = None
    ) -> str:
        """Create fleet `name` of `profile` (auto_latest unless `rollout` says otherwise);
        its enrolment token."""
        fleet = registry_pb2.Fleet(profile=f"profiles/{profile}")
        if rollout is not None:
            fleet.rollout.CopyFrom(rollout)
        created = self.stub.CreateFleet(
            registry_pb2.CreateFleetRequest(fleet_id=name, fleet=fleet),
            metadata=bearer(OPERATOR_TOKEN),
            timeout=CALL_TIMEOUT_S,
        )
        return str(created.enrolment_token)

    def register_devices(self, fleet_token: str, count: int, prefix: str) -> list[tuple[str, str]]:
        """Enrol `count` devices with the fleet's token: (device name, device token) each."""
        devices = []
        for index in range(count):
            answer = self.stub.RegisterDevice(
                registry_pb2.RegisterDeviceRequest(hardware_id=f"{prefix}-{index:05d}"),
                metadata=bearer(fleet_token),
                timeout=CALL_TIMEOUT_S,
            )
            devices.append((answer.device.name, answer.device_token))
        return devices

    def close(self) -> None:
        self.channel.close()
