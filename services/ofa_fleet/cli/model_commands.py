"""`ofa-fleet models list|show|pin|respecialize|operations|operation`: operate delivery's
models.

What an operator asks of delivery: which models exist and which fleets run them, where a
profile's specialization and its fleets' rollouts stand, pin a fleet to a model (or roll
it back, or unpin it), and ask for a new model now: a long-running operation, followed
(or cancelled) by its name. Every command needs delivery's address (--delivery or
OFA_FLEET_DELIVERY) and the operator token.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf.json_format import MessageToDict
from rich.console import Console

from ofa_fleet.cli.operator_commands import add_delivery_command
from ofa_fleet.console.output import listing
from ofa_fleet.contract.error_details import from_status
from ofa_fleet.errors import InvalidArgumentError, RemoteCallError
from ofa_fleet.serving.delivery_client import DeliveryClient
from ofa_fleet.v1 import delivery_pb2 as pb


def add_commands(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="delivery's models, rollouts and pins")
    models = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    listing = add_delivery_command(
        models, "list", "stored models and the fleets running them", _list
    )
    listing.add_argument("--profile", default="", help="only this profile's models")
    show = add_delivery_command(
        models, "show", "a profile's current model, history, rollouts", _show
    )
    show.add_argument("profile", help="the profile's name")
    show.add_argument("--history", type=int, default=10, help="entries of history (1-1000)")
    pin = add_delivery_command(
        models, "pin", "pin a fleet to a model, roll it back, or unpin it", _pin
    )
    pin.add_argument("fleet", help="the fleet's name")
    which = pin.add_mutually_exclusive_group(required=True)
    which.add_argument("--sha256", help="a stored model of the fleet's profile")
    which.add_argument(
        "--rollback", action="store_true", help="the model the profile had before this one"
    )
    which.add_argument("--unpin", action="store_true", help="back to the policy before the pin")
    again = add_delivery_command(
        models, "respecialize", "specialize a profile's model again now", _again
    )
    again.add_argument("profile", help="the profile's name")
    again.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS", help="wait this long for its end"
    )
    operations = add_delivery_command(
        models, "operations", "respecialize operations, oldest first", _operations
    )
    operations.add_argument("--profile", default="", help="only this profile's")
    operations.add_argument("--running", action="store_true", help="only those not done")
    operation = add_delivery_command(
        models, "operation", "one respecialize operation: show, wait for or cancel it", _operation
    )
    operation.add_argument("name", help="its name, operations/...")
    what = operation.add_mutually_exclusive_group()
    what.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait for its end")
    what.add_argument("--cancel", action="store_true", help="stop following it")


async def _list(args: argparse.Namespace, delivery: DeliveryClient) -> dict[str, Any] | None:
    models = await delivery.list_models(args.profile)
    rows = [_model_row(m.manifest, list(m.current_for_fleets)) for m in models]
    if args.json:
        return {"models": rows}
    table = listing(
        f"models ({len(rows)})",
        ("sha256", "profile", "rev", "supernet", "KiB", "created", "fleets"),
    )
    for row in rows:
        table.add_row(
            row["sha256"],
            row["profile"],
            str(row["profile_revision"]),
            row["supernet_version"],
            f"{row['size_bytes'] / 1024:.0f}",
            row["created_at"],
            ", ".join(row["fleets"]),
        )
    Console().print(table)
    return None


async def _show(args: argparse.Namespace, delivery: DeliveryClient) -> dict[str, Any] | None:
    if not 1 <= args.history <= 1000:
        raise InvalidArgumentError(f"--history must be 1-1000, got {args.history}")
    answer = await delivery.profile_models(args.profile, args.history)
    result = MessageToDict(answer, preserving_proto_field_name=True)
    result.pop("current", None)
    result["current"] = _model_row(answer.current, []) if answer.HasField("current") else None
    if args.json:
        return result
    console = Console()
    state = pb.SpecializationState.Name(answer.state).removeprefix("SPECIALIZATION_STATE_")
    console.print(f"[bold]{args.profile}[/]: {state.lower()}")
    if answer.last_error:
        console.print(f"  last error ({answer.attempts} attempts): {answer.last_error}")
    current = result["current"]
    if current is not None:
        console.print(
            f"  current {current['sha256']} (revision {current['profile_revision']}, "
            f"supernet {current['supernet_version']}, {current['size_bytes'] / 1024:.0f} KiB)"
        )
        console.print(f"  arch {current['arch']}")
    history = listing("history", ("at", "sha256", "reason"))
    for entry in answer.history:
        reason = pb.ModelChangeReason.Name(entry.reason).removeprefix("MODEL_CHANGE_REASON_")
        history.add_row(entry.change_time.ToJsonString(), entry.sha256, reason.lower())
    console.print(history)
    if answer.rollouts:
        rollouts = listing(
            "staged rollouts",
            ("fleet", "state", "from", "to", "canaries", "ok", "failed", "needed"),
        )
        for r in answer.rollouts:
            rollouts.add_row(
                r.fleet_name,
                pb.RolloutState.Name(r.state).removeprefix("ROLLOUT_STATE_").lower(),
                r.from_sha256,
                r.to_sha256,
                str(r.canary_devices),
                str(r.successful_canaries),
                str(r.failed_canaries),
                str(r.needed_successes),
            )
        console.print(rollouts)
    return None


async def _pin(args: argparse.Namespace, delivery: DeliveryClient) -> dict[str, Any] | None:
    answer = await delivery.pin_fleet(args.fleet, args.sha256 or "", args.rollback)
    result = {"fleet": args.fleet, "sha256": answer.sha256, "revision": answer.fleet_revision}
    if args.json:
        return result
    what = f"pinned to {answer.sha256}" if answer.sha256 else "unpinned"
    print(f"fleet {args.fleet} {what} (revision {answer.fleet_revision})")
    return None


async def _again(args: argparse.Namespace, delivery: DeliveryClient) -> dict[str, Any] | None:
    _check_wait(args.wait)
    operation = await delivery.respecialize(args.profile)
    if args.wait:
        operation = await delivery.wait_operation(operation.name, args.wait)
    return _tell(args, operation)


async def _operations(args: argparse.Namespace, delivery: DeliveryClient) -> dict[str, Any] | None:
    terms = [f'profile_name = "{args.profile}"'] if args.profile else []
    terms += ["done = false"] if args.running else []
    rows = [operation_row(o) for o in await delivery.list_operations(" AND ".join(terms))]
    if args.json:
        return {"operations": rows}
    table = listing(
        f"operations ({len(rows)})", ("name", "profile", "state", "created", "ended", "outcome")
    )
    for row in rows:
        table.add_row(
            row["name"], row["profile"], row["state"], row["created"], row["ended"], _outcome(row)
        )
    Console().print(table)
    return None


async def _operation(args: argparse.Namespace, delivery: DeliveryClient) -> dict[str, Any] | None:
    _check_wait(args.wait)
    if args.cancel:
        await delivery.cancel_operation(args.name)
    if args.wait:
        operation = await delivery.wait_operation(args.name, args.wait)
    else:
        operation = await delivery.operation(args.name)
    return _tell(args, operation)


def operation_row(operation: operations_pb2.Operation) -> dict[str, Any]:
    """What a person (or a script, with --json) wants of a Respecialize operation."""
    metadata = pb.RespecializeMetadata()
    operation.metadata.Unpack(metadata)
    row: dict[str, Any] = {
        "name": operation.name,
        "profile": metadata.profile_name,
        "done": operation.done,
        "state": pb.SpecializationState.Name(metadata.state)
        .removeprefix("SPECIALIZATION_STATE_")
        .lower(),
        "attempts": metadata.attempts,
        "last_error": metadata.last_error,
        "created": metadata.create_time.ToJsonString(),
        "ended": metadata.end_time.ToJsonString() if metadata.HasField("end_time") else "",
    }
    if operation.HasField("response"):
        manifest = pb.ModelManifest()
        operation.response.Unpack(manifest)
        row["model"] = _model_row(manifest, [])
    if operation.HasField("error"):
        details = from_status(operation.error)
        row["error"] = {
            "code": _code_name(operation.error.code),
            "message": operation.error.message,
            "reason": details.reason if details is not None else "",
        }
    return row


def _tell(args: argparse.Namespace, operation: operations_pb2.Operation) -> dict[str, Any] | None:
    row = operation_row(operation)
    if args.json:
        return row
    if not row["done"]:
        line = f"{row['name']}: {row['profile']} {row['state']}"
        if row["last_error"]:
            line += f" ({row['attempts']} attempts, last error: {row['last_error']})"
        print(line + "; `ofa-fleet models operation NAME --wait SECONDS` follows it")
    elif "error" in row:
        error = row["error"]
        raise RemoteCallError(
            f"{row['name']} ({row['profile']}) ended {error['code']}: {error['message']}",
            error["code"],
            reason=error["reason"],
        )
    else:
        print(f"{row['name']}: {row['profile']} {_outcome(row)}")
    return None


def _outcome(row: dict[str, Any]) -> str:
    if "model" in row:
        model = row["model"]
        return f"now runs {model['sha256'][:12]} (revision {model['profile_revision']})"
    if "error" in row:
        return f"{row['error']['code']}: {row['error']['message']}"
    return ""


def _code_name(code: int) -> str:
    return next((c.name for c in grpc.StatusCode if c.value[0] == code), str(code))


def _check_wait(seconds: float) -> None:
    if not 0 <= seconds <= 86400:
        raise InvalidArgumentError(f"--wait must be 0-86400 seconds, got {seconds:g}")


def _model_row(manifest: pb.ModelManifest, fleets: list[str]) -> dict[str, Any]:
    return {
        "sha256": manifest.sha256,
        "profile": manifest.profile_name,
        "profile_revision": manifest.profile_revision,
        "supernet_version": manifest.supernet_version,
        "arch": manifest.arch,
        "size_bytes": manifest.size_bytes,
        "created_at": manifest.create_time.ToJsonString(),
        "fleets": fleets,
        "figures": json.loads(manifest.canonical_manifest).get("figures", {}),
    }
