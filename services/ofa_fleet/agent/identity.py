"""Who this device is: enrolled once with the fleet token, then the same for good.

`RegisterDevice` answers with a device id and the device's own token, shown only that
once; `STATE/identity.json` keeps both, mode 0600 (the token is a credential), written
atomically (`durable.write_atomic`: temporary file, fsync, rename, directory fsync), so a
crash leaves the old file or the new one. Every later start reuses it and never enrols
again: a second enrolment would leave a second, orphaned device record in the registry.
The one window that cannot be closed from here is a crash after the registry answered and
before the file is durable; that costs one orphaned record, never a broken device.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from ofa_fleet.agent.backoff import Backoff, retry
from ofa_fleet.agent.connections import Connections
from ofa_fleet.contract.resource_names import device_name
from ofa_fleet.errors import FailedPreconditionError, IntegrityError, RemoteCallError
from ofa_fleet.storage.durable import write_atomic
from ofa_fleet.v1 import registry_pb2

IDENTITY_NAME = "identity.json"
FORMAT = "ofa-fleet.identity/1"
MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
HARDWARE_ID_LENGTH = 128


@dataclass(frozen=True)
class Identity:
    """What the registry issued at enrolment."""

    device_id: str
    device_token: str
    fleet: str
    hardware_id: str
    enrolled_at: str

    def __repr__(self) -> str:  # never print the token by accident
        return f"Identity(device_id={self.device_id!r}, fleet={self.fleet!r})"

    @property
    def name(self) -> str:
        """The device's resource name, as every call names it."""
        return device_name(self.fleet, self.device_id)


def identity_path(state_dir: Path) -> Path:
    return Path(state_dir) / IDENTITY_NAME


def load_identity(state_dir: Path) -> Identity | None:
    """The stored identity, or None before the first enrolment.

    A damaged file is an error, not a reason to enrol again: the device would silently
    become a new device and its old record would linger.
    """
    path = identity_path(state_dir)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"identity file {path} is not JSON ({exc}); {_REENROL}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IntegrityError(f"identity file {path} is not in format {FORMAT}; {_REENROL}")
    fields = {name: data.get(name) for name in Identity.__dataclass_fields__}
    if not all(isinstance(v, str) for v in fields.values()):
        raise IntegrityError(f"identity file {path} is not in format {FORMAT}; {_REENROL}")
    return Identity(**fields)  # type: ignore[arg-type]


def save_identity(state_dir: Path, identity: Identity) -> None:
    """Write the identity durably; `mkstemp` creates the file 0600 and the rename keeps it."""
    data = {"format": FORMAT, **asdict(identity)}
    write_atomic(identity_path(state_dir), json.dumps(data, indent=1, sort_keys=True).encode())


def default_hardware_id() -> str:
    """This machine's label: its hostname and a digest of its machine id, when it has one.

    The machine id is hashed with this program's name, as systemd advises, because the raw
    id is meant to stay on the machine; the digest still tells two machines apart that
    share a hostname (every fresh Raspberry Pi is "raspberrypi").
    """
    label = socket.gethostname() or "device"
    for path in MACHINE_ID_FILES:
        try:
            machine_id = path.read_text().strip()
        except OSError:
            continue
        if machine_id:
            digest = hashlib.sha256(f"ofa-fleet:{machine_id}".encode()).hexdigest()[:12]
            label = f"{label}-{digest}"
            break
    return "".join(c for c in label if c.isprintable())[:HARDWARE_ID_LENGTH]


async def enrolled_identity(
    state_dir: Path,
    connections: Connections,
    fleet_token: str | None,
    hardware_id: str | None,
    backoff: Backoff,
) -> tuple[Identity, bool]:
    """The stored identity, else a new one from `RegisterDevice`; and whether it is new."""
    stored = load_identity(state_dir)
    if stored is not None:
        return stored, False
    if not fleet_token:
        raise FailedPreconditionError(
            f"this device is not enrolled yet ({identity_path(state_dir)} does not exist): "
            "give the fleet's enrolment token with --fleet-token"
        )
    request = registry_pb2.RegisterDeviceRequest(
        hardware_id=hardware_id or default_hardware_id(),
        request_id=str(uuid.uuid4()),  # the same for every retry: one device, however many
    )
    try:
        answer = await retry(
            lambda: connections.call_registry(
                connections.registry.RegisterDevice, request, fleet_token
            ),
            "registry RegisterDevice",
            backoff,
        )
    except RemoteCallError as error:
        raise RemoteCallError(f"enrolment refused: {error}", error.code) from None
    identity = Identity(
        device_id=answer.device.id,
        device_token=answer.device_token,
        fleet=answer.device.fleet,
        hardware_id=answer.device.hardware_id,
        enrolled_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    save_identity(state_dir, identity)
    return identity, True


_REENROL = (
    "restore it, or remove it to enrol this device again as a new device (and delete the "
    "old record with the operator's tools)"
)
