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

from ofa_fleet.errors import NotFoundError, RemoteCallError
from ofa_fleet.hardware.profile_file import load_profile
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.stack.secrets_file import load_secrets, save_secrets
from ofa_fleet.v1 import common_pb2
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


def profile_files(directory: Path) -> list[Path]:
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml"), *directory.glob("*.json")])
    if not files:
        raise NotFoundError(f"no hardware profiles (*.yaml, *.json) in {directory}")
    return files


async def ensure_demo_fleets(
    registry: RegistryClient, files: list[Path], tokens_file: Path, device_root: Path
) -> list[DemoFleet]:
    """A profile for every file and a fleet (auto-latest) for every profile."""
    specs = [profile_to_proto(load_profile(path)) for path in files]  # all valid first
    tokens = load_secrets(tokens_file)
    fleets = []
    for spec in specs:
        profile = await ensure_profile(registry, spec)
        name = FLEET_PREFIX + spec.name
        if name not in tokens or not await fleet_exists(registry, name):
            tokens[name] = await create_fleet(registry, name, spec.name, device_root / name)
            save_secrets(tokens_file, tokens)
        fleets.append(DemoFleet(name, profile, tokens[name]))
    return fleets


async def ensure_profile(registry: RegistryClient, spec: common_pb2.HardwareProfile) -> pb.Profile:
    try:
        return await registry.create_profile(spec)
    except RemoteCallError as error:
        if error.code != "ALREADY_EXISTS":
            raise
    stored = await registry.get_profile(spec.name)
    if as_in_file(stored.spec, spec) == spec:
        return stored
    return await registry.update_profile(spec, expected_revision=stored.revision)


def as_in_file(
    stored: common_pb2.HardwareProfile, spec: common_pb2.HardwareProfile
) -> common_pb2.HardwareProfile:
    """The stored profile as its file would say it: the table a profile's devices measured
    (``measure_on_devices``, no table in the file) is the registry's, not a difference to
    undo. Replacing it would drop the table, and devices that sent theirs do not again."""
    if not spec.measure_on_devices or spec.latency_table_json:
        return stored
    unmeasured = common_pb2.HardwareProfile()
    unmeasured.CopyFrom(stored)
    unmeasured.ClearField("latency_table_json")
    return unmeasured


async def fleet_exists(registry: RegistryClient, name: str) -> bool:
    try:
        await registry.get_fleet(name)
    except RemoteCallError as error:
        if error.code == "NOT_FOUND":
            return False
        raise
    return True


async def create_fleet(registry: RegistryClient, name: str, profile: str, device_dir: Path) -> str:
    """A new fleet's enrolment token; an old fleet of that name goes, with its devices."""
    if await fleet_exists(registry, name):
        for device in await registry.list_devices(name):
            await registry.delete_device(device.name)
        await registry.delete_fleet(name)
    shutil.rmtree(device_dir, ignore_errors=True)
    response = await registry.create_fleet(name, profile)
    return str(response.enrolment_token)
