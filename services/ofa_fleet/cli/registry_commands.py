"""`ofa-fleet profiles|fleet|devices ...`: operate a running registry.

Every command needs the registry's address (--registry or OFA_FLEET_REGISTRY) and the
operator token (--operator-token-file or OFA_FLEET_OPERATOR_TOKEN).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.json_format import MessageToDict
from rich.console import Console

from ofa_fleet.cli.connection_flags import add_endpoint_flags
from ofa_fleet.cli.operator_commands import add_registry_command, delivery_client
from ofa_fleet.cli.profile_wait import wait_for_verdicts
from ofa_fleet.console.output import listing, stderr_console, write_machine
from ofa_fleet.contract.resource_names import (
    fleet_name,
    parse_fleet_name,
    parse_profile_name,
    profile_name,
)
from ofa_fleet.contract.rollout import (
    RolloutPolicy,
    RolloutStrategy,
    rollout_from_proto,
    rollout_to_proto,
)
from ofa_fleet.errors import InvalidArgumentError, NotFoundError, ProblemsFoundError
from ofa_fleet.hardware.profile_file import load_profile
from ofa_fleet.hardware.profile_proto import budget_ms, profile_from_proto, profile_to_proto
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.v1 import registry_pb2 as pb

MAX_WAIT_SECONDS = 3600.0


def add_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the registry's command groups; returns `fleet`, which other modules extend."""
    profiles = _group(sub, "profiles", "hardware profiles in the registry")
    create = add_registry_command(
        profiles, "create", "store profiles from YAML/JSON files", _create_profiles
    )
    create.add_argument("files", nargs="+", type=Path, help="profile files (YAML or JSON)")
    _add_wait_flags(create)
    update = add_registry_command(
        profiles,
        "update",
        "replace profiles from files (bumps a revision where the content changed)",
        _update,
    )
    update.add_argument("files", nargs="+", type=Path, help="profile files (YAML or JSON)")
    _add_wait_flags(update)
    update.add_argument(
        "--expected-revision", type=int, help="apply only at this revision (one file only)"
    )
    add_registry_command(profiles, "list", "list profiles", _list_profiles)
    get = add_registry_command(profiles, "get", "show one profile", _get_profile)
    get.add_argument("name", help="the profile's name")
    delete = add_registry_command(
        profiles, "delete", "delete a profile no fleet uses", _delete_profile
    )
    delete.add_argument("name", help="the profile's name")

    fleets = _group(
        sub, "fleet", "fleets: devices sharing a profile and a rollout policy", ["fleets"]
    )
    create = add_registry_command(
        fleets, "create", "create a fleet; prints its enrolment token", _create_fleet
    )
    create.add_argument("name", help="the new fleet's name (a DNS label)")
    create.add_argument("--profile", required=True, help="the profile its devices take")
    create.add_argument(
        "--rollout",
        choices=[s.value for s in RolloutStrategy],
        default="auto-latest",
        help="how new models reach its devices (default auto-latest)",
    )
    _add_rollout_settings(create)
    add_registry_command(fleets, "list", "list fleets", _list_fleets)
    update = add_registry_command(
        fleets,
        "update",
        "move a fleet to another profile, or change its rollout policy",
        _update_fleet,
    )
    update.add_argument("name", help="the fleet's name")
    update.add_argument("--profile", help="the profile the fleet's devices take from now on")
    update.add_argument(
        "--rollout",
        choices=[s.value for s in RolloutStrategy],
        help="the new rollout policy (replaces the whole policy)",
    )
    _add_rollout_settings(update)
    update.add_argument("--expected-revision", type=int, help="apply only at this revision")
    delete = add_registry_command(fleets, "delete", "delete a fleet without devices", _delete_fleet)
    delete.add_argument("name", help="the fleet's name")

    devices = _group(sub, "devices", "enrolled devices")
    listing = add_registry_command(devices, "list", "list devices", _list_devices)
    listing.add_argument("--fleet", default="", help="only this fleet's devices")
    listing.add_argument(
        "--filter",
        default="",
        help='only the devices that match, e.g. \'status.model_sha256 != "" AND '
        'last_seen_time < "2026-12-06T17:00:00Z"\' (fields: hardware_id, '
        "status.model_sha256, status.measured_latency_ms, last_seen_time; see the README)",
    )
    get = add_registry_command(devices, "get", "show one device", _get_device)
    get.add_argument("device", help="the device's name, fleets/FLEET/devices/ID")
    delete = add_registry_command(
        devices,
        "delete",
        "decommission devices: their tokens stop working at once and their records go",
        _delete_devices,
    )
    delete.add_argument(
        "devices",
        nargs="*",
        metavar="DEVICE",
        help="names of the devices to delete, fleets/FLEET/devices/ID",
    )
    delete.add_argument("--fleet", default="", help="with --all: every device of this fleet")
    delete.add_argument("--all", action="store_true", help="every device of --fleet")
    delete.add_argument(
        "--expected-revision", type=int, help="delete only at this revision (one device only)"
    )
    return fleets


def _add_rollout_settings(parser: argparse.ArgumentParser) -> None:
    """The settings that go with --rollout (pinned: --pin; staged: the rest)."""
    parser.add_argument("--pin", default="", help="model sha256 for --rollout pinned")
    parser.add_argument(
        "--canary-percent",
        type=int,
        default=10,
        help="staged: share of the fleet that gets a new model first (default 10)",
    )
    parser.add_argument(
        "--failure-threshold-percent",
        type=int,
        default=20,
        help="staged: failing canaries, in percent, that roll a new model back (default 20)",
    )
    parser.add_argument(
        "--min-success-reports",
        type=int,
        default=1,
        help="staged: canaries that must report success before everyone gets it (default 1)",
    )


def _group(
    sub: argparse._SubParsersAction, name: str, help: str, aliases: Sequence[str] = ()
) -> argparse._SubParsersAction:
    parser = sub.add_parser(name, help=help, aliases=list(aliases))
    return parser.add_subparsers(dest="action", required=True, parser_class=type(parser))


async def _create_profiles(args: argparse.Namespace, registry: RegistryClient) -> None:
    _check_wait(args)
    specs = [profile_to_proto(load_profile(path)) for path in args.files]  # all valid first
    created = [await registry.create_profile(spec) for spec in specs]
    await _show_written(args, created)


async def _update(args: argparse.Namespace, registry: RegistryClient) -> None:
    if args.expected_revision is not None and len(args.files) != 1:
        raise InvalidArgumentError("--expected-revision applies to one profile file at a time")
    _check_wait(args)
    specs = [profile_to_proto(load_profile(path)) for path in args.files]  # all valid first
    updated = [await registry.update_profile(spec, args.expected_revision) for spec in specs]
    await _show_written(args, updated)


def _add_wait_flags(parser: argparse.ArgumentParser) -> None:
    add_endpoint_flags(parser, "delivery")
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="then wait up to SECONDS for delivery's verdict on each profile: its model, or "
        "why no subnet fits (exit 3 unless every profile got a model)",
    )


def _check_wait(args: argparse.Namespace) -> None:
    if not 0 <= args.wait <= MAX_WAIT_SECONDS:
        raise InvalidArgumentError(f"--wait must be 0-{MAX_WAIT_SECONDS:g} s, got {args.wait}")


async def _show_written(args: argparse.Namespace, profiles: list[pb.Profile]) -> None:
    """The profiles as written; with --wait, delivery's verdict on each beside them."""
    if not args.wait:
        _print_profiles(profiles, args.json)
        return
    async with delivery_client(args) as delivery:
        revisions = {p.spec.name: p.revision for p in profiles}
        verdicts = await wait_for_verdicts(delivery, revisions, args.wait)
    if args.json:
        rows = [_profile_row(p) for p in profiles]
        specializations = [v.to_dict() for v in verdicts]
        write_machine({"profiles": rows, "specializations": specializations})
    else:
        _print_profiles(profiles, False)
        for verdict in verdicts:
            fine = f"profile {verdict.profile}: model {verdict.sha256}"
            stderr_console.print(verdict.problem or fine, soft_wrap=True)  # sha256 whole
    problems = [v.problem for v in verdicts if v.problem]
    if problems:
        raise ProblemsFoundError(f"{len(problems)} problem(s): " + "; ".join(problems))


async def _list_profiles(args: argparse.Namespace, registry: RegistryClient) -> None:
    _print_profiles(await registry.list_profiles(pb.PROFILE_VIEW_FULL), args.json)


async def _get_profile(args: argparse.Namespace, registry: RegistryClient) -> dict[str, Any]:
    profile = await registry.get_profile(args.name)
    if args.json:
        return MessageToDict(profile, preserving_proto_field_name=True)
    spec = profile_from_proto(profile.spec, "profile")
    data = spec.to_dict()
    data.pop("latency_table", None)
    return {
        **data,
        "revision": profile.revision,
        "latency_table": "yes" if profile.spec.latency_table_json else "no",
        "updated": profile.update_time.ToJsonString(),
    }


async def _delete_profile(args: argparse.Namespace, registry: RegistryClient) -> dict[str, Any]:
    await registry.delete_profile(args.name)
    return {"deleted": args.name}


def _rollout_policy(args: argparse.Namespace) -> RolloutPolicy:
    strategy = RolloutStrategy(args.rollout)
    staged = strategy is RolloutStrategy.STAGED
    if args.pin and strategy is not RolloutStrategy.PINNED:
        raise InvalidArgumentError("--pin applies only with --rollout pinned")
    return RolloutPolicy(
        strategy=strategy,
        pinned_model_sha256=args.pin,
        canary_percent=args.canary_percent if staged else 0,
        failure_threshold_percent=args.failure_threshold_percent if staged else 0,
        min_success_reports=args.min_success_reports if staged else 0,
    )


async def _create_fleet(args: argparse.Namespace, registry: RegistryClient) -> dict[str, Any]:
    policy = rollout_to_proto(_rollout_policy(args))
    response = await registry.create_fleet(args.name, args.profile, policy)
    if not args.json:
        stderr_console.print(
            "[bold]Keep the enrolment token now:[/] it is stored only as a hash and will not "
            "be shown again. Devices enrol with it."
        )
    return {
        "fleet": parse_fleet_name(response.fleet.name),
        "profile": parse_profile_name(response.fleet.profile),
        "rollout": args.rollout,
        "enrolment_token": response.enrolment_token,
    }


async def _list_fleets(args: argparse.Namespace, registry: RegistryClient) -> None:
    fleets = await registry.list_fleets()
    rows = [
        {
            "name": parse_fleet_name(f.name),
            "profile": parse_profile_name(f.profile),
            "rollout": rollout_from_proto(f.rollout).strategy.value,
            "revision": f.revision,
            "created": f.create_time.ToJsonString(),
        }
        for f in fleets
    ]
    _print_rows("fleets", rows, args.json)


async def _update_fleet(args: argparse.Namespace, registry: RegistryClient) -> dict[str, Any]:
    changed = pb.Fleet(name=fleet_name(args.name))
    paths: list[str] = []
    if args.profile is not None:
        changed.profile = profile_name(args.profile)
        paths.append("profile")
    if args.rollout is not None:
        changed.rollout.CopyFrom(rollout_to_proto(_rollout_policy(args)))
        paths.append("rollout")
    elif args.pin:
        raise InvalidArgumentError("--pin applies only with --rollout pinned")
    if not paths:
        raise InvalidArgumentError("nothing to change: give --profile, --rollout or both")
    request = pb.UpdateFleetRequest(fleet=changed, update_mask=FieldMask(paths=paths))
    if args.expected_revision is not None:
        request.expected_revision = args.expected_revision
    fleet = await registry.update_fleet(request)
    return {
        "fleet": parse_fleet_name(fleet.name),
        "profile": parse_profile_name(fleet.profile),
        "revision": fleet.revision,
        "rollout": MessageToDict(fleet.rollout, preserving_proto_field_name=True),
    }


async def _delete_fleet(args: argparse.Namespace, registry: RegistryClient) -> dict[str, Any]:
    await registry.delete_fleet(args.name)
    return {"deleted": args.name}


async def _list_devices(args: argparse.Namespace, registry: RegistryClient) -> None:
    devices = await registry.list_devices(args.fleet, args.filter)
    rows = [
        {
            "name": d.name,
            "fleet": d.fleet,
            "hardware_id": d.hardware_id,
            "last_seen": d.last_seen_time.ToJsonString() if d.HasField("last_seen_time") else "",
            "model_sha256": d.status.model_sha256,
            "latency_ms": round(d.status.measured_latency_ms, 3),
            "errors": len(d.status.errors),
        }
        for d in devices
    ]
    _print_rows("devices", rows, args.json)


async def _get_device(args: argparse.Namespace, registry: RegistryClient) -> dict[str, Any]:
    device = await registry.get_device(args.device)
    return MessageToDict(device, preserving_proto_field_name=True)


async def _delete_devices(args: argparse.Namespace, registry: RegistryClient) -> dict[str, Any]:
    """Delete the named devices, or with ``--fleet F --all`` every device of F; each one
    is gone from every service as soon as its deletion is written (see revocation)."""
    if args.all != bool(args.fleet):
        raise InvalidArgumentError("--all and --fleet go together: --fleet NAME --all")
    if args.all and args.devices:
        raise InvalidArgumentError("give device names or --fleet NAME --all, not both")
    if not args.all and not args.devices:
        raise InvalidArgumentError("name the devices to delete, or give --fleet NAME --all")
    if args.expected_revision is not None and len(args.devices) != 1:
        raise InvalidArgumentError("--expected-revision applies to one device only")
    if args.all:
        names = [device.name for device in await registry.list_devices(args.fleet)]
    else:
        names = list(dict.fromkeys(args.devices))
    deleted = []
    for name in names:
        try:
            await registry.delete_device(name, args.expected_revision)
        except NotFoundError:
            if not args.all:
                raise
            continue  # deleted by someone else since the listing: gone all the same
        deleted.append(name)
    return {"deleted": deleted}


def _print_profiles(profiles: list[pb.Profile], as_json: bool) -> None:
    _print_rows("profiles", [_profile_row(p) for p in profiles], as_json)


def _profile_row(p: pb.Profile) -> dict[str, Any]:
    return {
        "name": p.spec.name,
        "revision": p.revision,
        "cpu": f"{p.spec.cpu.architecture} x{p.spec.cpu.cores} @ {p.spec.cpu.clock_ghz} GHz",
        "latency_budget_ms": budget_ms(p.spec.constraints),
        "max_model_bytes": p.spec.constraints.max_model_bytes,
        "latency_table": bool(p.spec.latency_table_json),
    }


def _print_rows(kind: str, rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        write_machine({kind: rows})
        return
    table = listing(f"{kind} ({len(rows)})", list(rows[0]) if rows else ["name"])
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)
