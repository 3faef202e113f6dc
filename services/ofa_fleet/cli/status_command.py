"""`ofa-fleet status`: the running system on one screen.

Which services answer their gRPC health check, the registry's profiles and fleets, how
many of each fleet's devices last reported the model delivery gives the fleet's profile
(or the model the fleet is pinned to), and the latest specializations. A service that is
down is shown as down, never an error: status is what an operator runs when something is
wrong. Coverage here is read from the device records, so it needs no Prometheus; during a
staged rollout's canary phase the canaries count as off the current model (Prometheus'
`ofa_fleet_fleet_coverage_ratio` counts them by their own target).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console

from ofa_fleet.cli.common_flags import add_json_flag, add_operator_token_flag
from ofa_fleet.cli.connection_flags import (
    add_endpoint_flags,
    add_tls_flags,
    operator_token_file,
    tls_files,
)
from ofa_fleet.console.output import emit, listing
from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.contract.resource_names import parse_fleet_name, parse_profile_name
from ofa_fleet.contract.rollout import (
    RolloutStrategy,
    pinned_sha256,
    rollout_from_proto,
    strategy_of,
)
from ofa_fleet.errors import OfaFleetError, ProblemsFoundError
from ofa_fleet.serving.client import open_aio_channel, remote_errors
from ofa_fleet.serving.credentials import load_operator_token
from ofa_fleet.serving.delivery_client import DeliveryClient
from ofa_fleet.serving.ports import DELIVERY_PORT, REGISTRY_PORT, SEARCH_PORT
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.serving.tls import TlsFiles
from ofa_fleet.v1 import (
    delivery_pb2,
    registry_pb2,
    registry_pb2_grpc,
)

SERVICES = {
    "registry": ("OFA_FLEET_REGISTRY", REGISTRY_PORT, "ofa_fleet.v1.RegistryService"),
    "search": ("OFA_FLEET_SEARCH", SEARCH_PORT, "ofa_fleet.v1.SearchService"),
    "delivery": ("OFA_FLEET_DELIVERY", DELIVERY_PORT, "ofa_fleet.v1.DeliveryService"),
}
RECENT = 10


def add_command(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("status", help="services, profiles, fleets, coverage, specializations")
    add_endpoint_flags(parser, *SERVICES)
    add_operator_token_flag(parser)
    add_tls_flags(parser, "the servers' certs", mutual=False)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per call")
    add_json_flag(parser)
    parser.set_defaults(handler=run_status)


def run_status(args: argparse.Namespace) -> None:
    """Print what is there; then exit 3 (`ProblemsFoundError`) when anything is down, could
    not be read or is failing, so that a script or a probe can tell."""
    token = load_operator_token(operator_token_file(args))
    status = asyncio.run(_gather(args, token, tls_files(args)))
    status["problems"] = problems(status)
    if args.json:
        emit(status, True, "ofa-fleet status")
    else:
        _show(status)
    if status["problems"]:
        count = len(status["problems"])
        raise ProblemsFoundError(f"{count} problem(s): " + "; ".join(status["problems"]))


def problems(status: dict[str, Any]) -> list[str]:
    """Everything an operator should act on, each in full (the tables cut long text)."""
    found = [
        f"{name} at {service['address']} is {service['status']}"
        for name, service in status["services"].items()
        if service["status"] != "serving"
    ]
    found += status["errors"]
    found += [
        f"profile {p['name']} is {p['state']}: {p.get('last_error') or 'no reason given'}"
        for p in status["profiles"]
        if p.get("state") in ("failing", "infeasible")
    ]
    return found


async def _gather(args: argparse.Namespace, token: str, tls: TlsFiles) -> dict[str, Any]:
    channels = {name: open_aio_channel(getattr(args, name), tls) for name in SERVICES}
    try:
        return await _read(args, token, channels)
    finally:
        for channel in channels.values():
            await channel.close(None)


async def _read(args: argparse.Namespace, token: str, channels: dict[str, aio.Channel]) -> dict:
    services = {
        name: await _health(channels[name], service, args.timeout)
        for name, (_, _, service) in SERVICES.items()
    }
    status: dict[str, Any] = {
        "services": {
            name: {"address": getattr(args, name), "status": state}
            for name, state in services.items()
        },
        "profiles": [],
        "fleets": [],
        "recent_specializations": [],
        "errors": [],
    }
    if services["registry"] != "serving":
        return status
    registry = RegistryClient(
        registry_pb2_grpc.RegistryServiceStub(channels["registry"]),
        token,
        deadline_seconds=args.timeout,
        errors=remote_errors("registry", args.registry),
    )
    delivery = None
    if services["delivery"] == "serving":
        delivery = DeliveryClient(
            channels["delivery"],
            token,
            deadline_seconds=args.timeout,
            errors=remote_errors("delivery", args.delivery),
        )
    try:
        profiles = await registry.list_profiles()
        fleets = await registry.list_fleets()
    except OfaFleetError as error:
        status["errors"].append(str(error))
        return status
    current: dict[str, str] = {}
    recent: list[dict[str, Any]] = []
    for profile in profiles:
        name = profile.spec.name
        row: dict[str, Any] = {"name": name, "revision": profile.revision}
        if delivery is not None:
            try:
                models = await delivery.profile_models(name, RECENT)
            except OfaFleetError as error:
                status["errors"].append(str(error))
            else:
                row["state"] = _enum(delivery_pb2.SpecializationState, models.state)
                row["model"] = models.current.sha256 if models.HasField("current") else ""
                row["latency_source"] = _latency_source(models)
                row["last_error"] = models.last_error
                current[name] = row["model"]
                recent += [
                    {
                        "profile": name,
                        "sha256": h.sha256,
                        "reason": _enum(delivery_pb2.ModelChangeReason, h.reason),
                        "at": h.change_time.ToJsonString(),
                    }
                    for h in models.history
                ]
        status["profiles"].append(row)
    for fleet in fleets:
        try:
            devices = await registry.list_devices(parse_fleet_name(fleet.name))
        except OfaFleetError as error:
            status["errors"].append(str(error))
        else:
            status["fleets"].append(_fleet_row(fleet, devices, current))
    recent.sort(key=lambda r: str(r["at"]), reverse=True)
    status["recent_specializations"] = recent[:RECENT]
    return status


async def _health(channel: aio.Channel, service: str, timeout: float) -> str:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as error:
        code = error.code() if hasattr(error, "code") else None
        return "down" if code is grpc.StatusCode.UNAVAILABLE else f"error ({code})"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status).lower()


def _fleet_row(
    fleet: registry_pb2.Fleet, devices: list[registry_pb2.Device], current: dict[str, str]
) -> dict[str, Any]:
    pinned = strategy_of(fleet.rollout) is RolloutStrategy.PINNED
    profile = parse_profile_name(fleet.profile)
    target = pinned_sha256(fleet.rollout) if pinned else current.get(profile, "")
    on_target = sum(1 for d in devices if target and d.status.model_sha256 == target)
    return {
        "name": parse_fleet_name(fleet.name),
        "profile": profile,
        "rollout": rollout_from_proto(fleet.rollout).strategy.value,  # as its flag spells it
        "devices": len(devices),
        "reported": sum(1 for d in devices if d.HasField("status")),
        "on_current_model": on_target,
        "coverage": round(on_target / len(devices), 4) if devices else None,
    }


def _latency_source(models: delivery_pb2.GetProfileModelsResponse) -> str:
    """Where the current model's predicted latency came from (`lut` once the profile's
    devices measured their table), as its signed manifest says; empty without a model."""
    if not models.HasField("current"):
        return ""
    try:
        figures = Manifest.from_bytes(models.current.canonical_manifest).figures
    except OfaFleetError:
        return "?"
    return str(figures.get("latency_source", ""))


def _enum(kind: Any, value: int) -> str:
    """`SPECIALIZATION_STATE_CURRENT` as "current"."""
    prefix = str(kind.Name(0)).removesuffix("UNSPECIFIED")  # every enum's zero value
    return str(kind.Name(value)).removeprefix(prefix).lower()


def _show(status: dict[str, Any]) -> None:
    console = Console()
    for name, service in status["services"].items():
        colour = "green" if service["status"] == "serving" else "red"
        console.print(
            f"[bold]{name:<9}[/] {service['address']:<22} [{colour}]{service['status']}[/]"
        )
    profiles = listing(
        f"profiles ({len(status['profiles'])})",
        ("profile", "rev", "state", "model", "latency from", "last error"),
    )
    for p in status["profiles"]:
        profiles.add_row(
            p["name"],
            str(p["revision"]),
            p.get("state", "?"),
            p.get("model", ""),
            p.get("latency_source", ""),
            p.get("last_error", ""),
        )
    console.print(profiles)
    fleets = listing(
        f"fleets ({len(status['fleets'])})",
        ("fleet", "profile", "rollout", "devices", "reported", "on model", "coverage"),
    )
    for f in status["fleets"]:
        coverage = "-" if f["coverage"] is None else f"{f['coverage']:.0%}"
        fleets.add_row(
            f["name"],
            f["profile"],
            f["rollout"],
            str(f["devices"]),
            str(f["reported"]),
            str(f["on_current_model"]),
            coverage,
        )
    console.print(fleets)
    recent = listing("recent specializations", ("at", "profile", "sha256", "reason"))
    for r in status["recent_specializations"]:
        recent.add_row(r["at"], r["profile"], r["sha256"], r["reason"])
    console.print(recent)
    for error in status["errors"]:
        console.print(f"[red]error:[/] {error}")
