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
import statistics
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.errors import RemoteCallError
from ofa_fleet.fleet.simulator import SimulationSettings, simulate_fleet
from ofa_fleet.fleet.summary import DeviceOutcome, SimulationSummary
from ofa_fleet.serving.client import open_aio_channel, remote_errors
from ofa_fleet.serving.delivery_client import DeliveryClient
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.stack.demo_fleets import DemoFleet, ensure_demo_fleets, profile_files
from ofa_fleet.stack.local_stack import LocalStack
from ofa_fleet.v1 import delivery_pb2, delivery_pb2_grpc, registry_pb2_grpc

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


async def run_demo(
    stack: LocalStack, settings: DemoSettings, observer: DemoObserver
) -> dict[str, Any]:
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
        delivery_pb2_grpc.DeliveryServiceStub(delivery_channel),
        stack.token,
        errors=remote_errors("delivery", addresses.delivery),
    )
    try:
        summaries = await _until_a_server_exits(
            stack, _simulate_and_watch(stack, fleets, counts, settings, delivery, observer)
        )
        rows = []
        for fleet in fleets:
            models = await delivery.profile_models(fleet.profile_name, history_limit=1)
            observer.profile_state(
                fleet.profile_name, STATE_NAMES.get(models.state, "waiting"), models.last_error
            )
            rows.append(profile_row(fleet, models, summaries))
        ledger = await delivery.carbon_ledger()
    finally:
        await delivery_channel.close(None)
    outcomes = [o for summary in summaries.values() for o in summary.outcomes]
    return {
        "devices": settings.devices,
        "served": sum(1 for o in outcomes if o.ok),
        "verified": sum(1 for o in outcomes if o.verified),
        "enrolled": sum(1 for o in outcomes if o.enrolled),
        "bytes_downloaded": sum(o.bytes_downloaded for o in outcomes),
        "seconds_to_serve_all": round(
            max((s.wall_seconds for s in summaries.values()), default=0), 1
        ),
        "errors": _errors(summaries),
        "profiles": [{**row, **profile_carbon(row["profile"], ledger)} for row in rows],
        "carbon": carbon_summary(ledger),
        "registry": stack.addresses.registry,
        "delivery": stack.addresses.delivery,
    }


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


def profile_row(
    fleet: DemoFleet,
    models: delivery_pb2.GetProfileModelsResponse,
    summaries: dict[str, SimulationSummary],
) -> dict[str, Any]:
    summary = summaries.get(fleet.name)
    outcomes = summary.outcomes if summary else []
    served = [o for o in outcomes if o.ok]
    budget = float(fleet.profile.spec.constraints.latency_budget_ms)
    row: dict[str, Any] = {
        "profile": fleet.profile_name,
        "fleet": fleet.name,
        "devices": len(outcomes),
        "served": len(served),
        "verified": sum(1 for o in outcomes if o.verified),
        "latency_budget_ms": budget,
        "measured_latency_ms": _median([o.latency_ms for o in served]),
    }
    if not models.HasField("current"):
        return {**row, "arch": "", "error": models.last_error or "no model yet"}
    manifest = Manifest.from_bytes(models.current.canonical_manifest)
    figures = manifest.model_figures()
    predicted = figures.predicted_latency_ms or 0.0
    return {
        **row,
        "arch": manifest.arch,
        "sha256": manifest.sha256,
        "supernet_version": manifest.supernet_version,
        "model_bytes": manifest.size_bytes,
        "macs": figures.macs or 0,
        "predicted_latency_ms": round(predicted, 4),
        "latency_source": figures.latency_source,
        "within_budget": predicted <= budget,
        "top1": round(figures.measured_top1 or 0.0, 4),
        "predicted_top1": round(figures.predicted_top1 or 0.0, 4),
        "devices_on_current_model": sum(1 for o in served if o.model_sha256 == manifest.sha256),
    }


def profile_carbon(profile: str, ledger: delivery_pb2.GetCarbonLedgerResponse) -> dict[str, Any]:
    """The profile's amortized energy and CO2e, and how many times less than training
    one network for it from scratch (None where no scratch reference was measured)."""
    found = next((p for p in ledger.profiles if p.profile_name == profile), None)
    if found is None:
        return {"energy_joules": None, "co2e_grams": None, "scratch_to_ofa_ratio": None}
    amortized = found.amortized
    scratch = ledger.scratch_per_network.energy_joules if ledger.HasField("counterfactual") else 0
    return {
        "energy_joules": round(amortized.energy_joules, 1),
        "co2e_grams": round(amortized.co2e_grams, 4),
        "scratch_to_ofa_ratio": round(scratch / amortized.energy_joules, 4)
        if scratch and amortized.energy_joules
        else None,
    }


def carbon_summary(ledger: delivery_pb2.GetCarbonLedgerResponse) -> dict[str, Any]:
    """The fleet-wide figures of `ofa-fleet carbon report`, for the demo's last lines."""
    ratio = ledger.ratio.energy_joules if ledger.ratio.HasField("energy_joules") else None
    even = ledger.break_even_profiles
    return {
        "training_joules": round(ledger.training_total.energy_joules, 1),
        "fixed_joules": round(ledger.fixed.energy_joules, 1),
        "once_for_all_joules": round(ledger.once_for_all_total.energy_joules, 1),
        "once_for_all_co2e_grams": round(ledger.once_for_all_total.co2e_grams, 4),
        "per_served_device_joules": round(ledger.per_served_device.energy_joules, 1)
        if ledger.HasField("per_served_device")
        else None,
        "scratch_per_network_joules": round(ledger.scratch_per_network.energy_joules, 1)
        if ledger.HasField("counterfactual")
        else None,
        "counterfactual_joules": round(ledger.counterfactual.energy_joules, 1)
        if ledger.HasField("counterfactual")
        else None,
        "ratio": None if ratio is None else round(ratio, 3),
        "break_even_profiles": round(even.energy_joules, 2)
        if ledger.HasField("break_even_profiles") and even.HasField("energy_joules")
        else None,
        "unavailable_reason": ledger.counterfactual_unavailable_reason,
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def _errors(summaries: dict[str, SimulationSummary]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for summary in summaries.values():
        for error, count in summary.errors().items():
            counts[error] = counts.get(error, 0) + count
    return counts
