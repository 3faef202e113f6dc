"""The demo's registry content: the example profiles, and one fleet for each.

Run twice on one workdir, it changes nothing the second time: a stored profile equal to
its file is kept (one that differs is updated, which makes delivery specialize it again),
and a fleet that exists is kept with its enrolment token. The registry shows that token
only when the fleet is created, so the demo keeps it in the workdir (mode 0600). A fleet
whose token was lost is made again: its devices are deleted, and so are their state
directories, whose identities would no longer be valid.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ofa_fleet.errors import NotFoundError, RemoteCallError
from ofa_fleet.hardware.profile_file import load_profile
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.serving.client import call, open_channel
from ofa_fleet.stack.secrets_file import load_secrets, save_secrets
from ofa_fleet.v1 import common_pb2, registry_pb2_grpc
from ofa_fleet.v1 import registry_pb2 as pb

FLEET_PREFIX = "demo-"


@dataclass(frozen=True)
class DemoFleet:
    name: str
    profile: pb.Profile
    enrolment_token: str

    @property
    def profile_name(self) -> str:
        return str(self.profile.spec.name)


class RegistryClient:
    """The registry with the operator token; every call has a deadline."""

    def __init__(self, address: str, token: str, timeout: float = 10.0) -> None:
        self.address = address
        self.token = token
        self.timeout = timeout
        self.channel = open_channel(address)
        self.stub = registry_pb2_grpc.RegistryServiceStub(self.channel)

    def __call__(self, method: str, request: object) -> Any:
        rpc = getattr(self.stub, method)
        return call("registry", self.address, rpc, request, self.token, self.timeout)

    def close(self) -> None:
        self.channel.close()


def profile_files(directory: Path) -> list[Path]:
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml"), *directory.glob("*.json")])
    if not files:
        raise NotFoundError(f"no hardware profiles (*.yaml, *.json) in {directory}")
    return files


def ensure_demo_fleets(
    registry: RegistryClient, files: list[Path], tokens_file: Path, device_root: Path
) -> list[DemoFleet]:
    """A profile for every file and a fleet (auto-latest) for every profile."""
    specs = [profile_to_proto(load_profile(path)) for path in files]  # all valid first
    tokens = load_secrets(tokens_file)
    fleets = []
    for spec in specs:
        profile = ensure_profile(registry, spec)
        name = FLEET_PREFIX + spec.name
        if name not in tokens or not fleet_exists(registry, name):
            tokens[name] = create_fleet(registry, name, spec.name, device_root / name)
            save_secrets(tokens_file, tokens)
        fleets.append(DemoFleet(name, profile, tokens[name]))
    return fleets


def ensure_profile(registry: RegistryClient, spec: common_pb2.HardwareProfile) -> pb.Profile:
    try:
        return registry("CreateProfile", pb.CreateProfileRequest(profile=spec)).profile
    except RemoteCallError as error:
        if error.code != "ALREADY_EXISTS":
            raise
    stored = registry("GetProfile", pb.GetProfileRequest(name=spec.name)).profile
    if stored.spec == spec:
        return stored
    request = pb.UpdateProfileRequest(profile=spec, expected_revision=stored.revision)
    return registry("UpdateProfile", request).profile


def fleet_exists(registry: RegistryClient, name: str) -> bool:
    try:
        registry("GetFleet", pb.GetFleetRequest(name=name))
    except RemoteCallError as error:
        if error.code == "NOT_FOUND":
            return False
        raise
    return True


def create_fleet(registry: RegistryClient, name: str, profile: str, device_dir: Path) -> str:
    """A new fleet's enrolment token; an old fleet of that name goes, with its devices."""
    if fleet_exists(registry, name):
        for device in list_devices(registry, name):
            registry("DeleteDevice", pb.DeleteDeviceRequest(device_id=device.id))
        registry("DeleteFleet", pb.DeleteFleetRequest(name=name))
    shutil.rmtree(device_dir, ignore_errors=True)
    response = registry("CreateFleet", pb.CreateFleetRequest(name=name, profile=profile))
    return str(response.enrolment_token)


def list_devices(registry: RegistryClient, fleet: str) -> list[pb.Device]:
    devices: list[pb.Device] = []
    page = ""
    while True:
        response = registry("ListDevices", pb.ListDevicesRequest(fleet=fleet, page_token=page))
        devices.extend(response.devices)
        page = response.next_page_token
        if not page:
            return devices
