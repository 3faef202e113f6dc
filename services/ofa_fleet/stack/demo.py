"""The demo: a running stack, the example profiles, and a simulated fleet booting on them.

Devices are spread over one fleet per profile and all boot at once, right after their
fleets exist: each waits (within its deadline) while delivery's reconciler has search
specialize a model for its profile, then downloads, verifies, installs, runs and times
it, exactly as `ofa-fleet device run` would. What each profile got is then read back
from delivery (the signed manifest carries the figures search predicted and measured),
next to what its devices measured here.

A server that exits during the run ends it at once with that server's name, instead of
leaving the devices to wait out their deadline.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ofa_fleet.errors import RemoteCallError
from ofa_fleet.fleet.simulator import SimulationSettings, simulate_fleet
from ofa_fleet.fleet.summary import DeviceOutcome, SimulationSummary
from ofa_fleet.serving.client import open_aio_channel, remote_errors
from ofa_fleet.serving.delivery_client import DeliveryClient
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.stack.demo_fleets import DemoFleet, ensure_demo_fleets, profile_files
from ofa_fleet.stack.demo_results import DemoResult, carbon_summary, profile_result
from ofa_fleet.stack.local_stack import LocalStack
from ofa_fleet.v1 import delivery_pb2, registry_pb2_grpc

WATCH_SECONDS = 1.0
T = TypeVar("T")
STATE_NAMES = {
    delivery_pb2.SPECIALIZATION_STATE_CURRENT: "ready",
    delivery_pb2.SPECIALIZATION_STATE_PENDING: "specializing",
    delivery_pb2.SPECIALIZATION_STATE_FAILING: "failing, retrying",
}


@dataclass(frozen=True)
class DemoSettings:
    profiles_dir: Path
    devices: int = 30
    deadline_seconds: float = 600.0


class DemoObserver(Protocol):
    """What a display hears while the demo runs."""

    def fleets_ready(self, fleets: list[DemoFleet], devices: dict[str, int]) -> None: ...

    def profile_state(self, profile: str, state: str, error: str) -> None: ...

    def device_done(self, fleet: str, outcome: DeviceOutcome) -> None: ...


async def run_demo(stack: LocalStack, settings: DemoSettings, observer: DemoObserver) -> DemoResult:
    workdir = stack.settings.workdir
    addresses = stack.addresses
    registry_channel = open_aio_channel(addresses.registry)
    try:
        registry = RegistryClient(
            registry_pb2_grpc.RegistryServiceStub(registry_channel),
            stack.token,
            errors=remote_errors("registry", addresses.registry),
        )
        fleets = await ensure_demo_fleets(
            registry,
            profile_files(settings.profiles_dir),
            workdir / "fleet-tokens.json",
            workdir / "devices",
        )
    finally:
        await registry_channel.close(None)
    counts = spread(settings.devices, [f.name for f in fleets])
    observer.fleets_ready(fleets, counts)
    delivery_channel = open_aio_channel(addresses.delivery)
    delivery = DeliveryClient(
        delivery_channel,
        stack.token,
        errors=remote_errors("delivery", addresses.delivery),
    )
    try:
        summaries = await _until_a_server_exits(
            stack, _simulate_and_watch(stack, fleets, counts, settings, delivery, observer)
        )
        models = {}
        for fleet in fleets:
            models[fleet.name] = answer = await delivery.profile_models(fleet.profile_name, 1)
            observer.profile_state(
                fleet.profile_name, STATE_NAMES.get(answer.state, "waiting"), answer.last_error
            )
        ledger = await delivery.carbon_ledger()
    finally:
        await delivery_channel.close(None)
    outcomes = [o for summary in summaries.values() for o in summary.outcomes]
    return DemoResult(
        devices=settings.devices,
        served=sum(1 for o in outcomes if o.ok),
        verified=sum(1 for o in outcomes if o.verified),
        enrolled=sum(1 for o in outcomes if o.enrolled),
        bytes_downloaded=sum(o.bytes_downloaded for o in outcomes),
        seconds_to_serve_all=round(max((s.wall_seconds for s in summaries.values()), default=0), 1),
        errors=_errors(summaries),
        profiles=[
            profile_result(fleet, models[fleet.name], summaries.get(fleet.name), ledger)
            for fleet in fleets
        ],
        carbon=carbon_summary(ledger),
        registry=addresses.registry,
        delivery=addresses.delivery,
    )


def spread(devices: int, fleets: list[str]) -> dict[str, int]:
    """``devices`` over the fleets as evenly as possible, the first ones taking the rest."""
    base, rest = divmod(devices, len(fleets))
    return {name: base + (1 if i < rest else 0) for i, name in enumerate(fleets)}


async def _simulate_and_watch(
    stack: LocalStack,
    fleets: list[DemoFleet],
    counts: dict[str, int],
    settings: DemoSettings,
    delivery: DeliveryClient,
    observer: DemoObserver,
) -> dict[str, SimulationSummary]:
    watcher = asyncio.create_task(_watch_profiles(delivery, fleets, observer))
    try:
        runs = [
            _simulate(stack, fleet, counts[fleet.name], settings, observer)
            for fleet in fleets
            if counts[fleet.name]
        ]
        summaries = await asyncio.gather(*runs)
    finally:
        watcher.cancel()
    names = [f.name for f in fleets if counts[f.name]]
    return dict(zip(names, summaries, strict=True))


async def _simulate(
    stack: LocalStack,
    fleet: DemoFleet,
    devices: int,
    settings: DemoSettings,
    observer: DemoObserver,
) -> SimulationSummary:
    threads = min(max(1, fleet.profile.spec.runtime.threads), os.cpu_count() or 1)
    simulation = SimulationSettings(
        registry=stack.addresses.registry,
        delivery=stack.addresses.delivery,
        fleet_token=fleet.enrolment_token,
        devices=devices,
        state_root=stack.settings.workdir / "devices" / fleet.name,
        threads=threads,
        deadline_seconds=settings.deadline_seconds,
        hardware_id_prefix=fleet.name,
    )
    return await simulate_fleet(
        simulation, lambda outcome: observer.device_done(fleet.name, outcome)
    )


async def _watch_profiles(
    delivery: DeliveryClient, fleets: list[DemoFleet], observer: DemoObserver
) -> None:
    """Where each profile's specialization stands, for the display (once a second)."""
    while True:
        for fleet in fleets:
            try:
                models = await delivery.profile_models(fleet.profile_name, history_limit=1)
            except RemoteCallError:
                continue  # only a display: the devices themselves wait and retry
            state = STATE_NAMES.get(models.state, "waiting")
            observer.profile_state(fleet.profile_name, state, models.last_error)
        await asyncio.sleep(WATCH_SECONDS)


async def _until_a_server_exits(stack: LocalStack, work: Coroutine[Any, Any, T]) -> T:
    """``work``'s result, unless a server of the stack exits first: then its error."""
    task = asyncio.create_task(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=WATCH_SECONDS)
        if done:
            return task.result()
        exited = stack.exited()
        if exited is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise exited


def _errors(summaries: dict[str, SimulationSummary]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for summary in summaries.values():
        for error, count in summary.errors().items():
            counts[error] = counts.get(error, 0) + count
    return counts
