"""`ofa-fleet carbon ...`: the carbon ledger from the command line.

`carbon reference` measures the counterfactual unit (one specialized network trained from
scratch to its once-for-all subnet's accuracy) and keeps it beside the checkpoint, where
the supernet's ledger reads it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ofa_fleet.carbon.scratch_reference import DEFAULT_EPOCH_CAP
from ofa_fleet.cli.common_flags import add_checkpoint_flag, add_json_flag
from ofa_fleet.cli.core_commands import add_device_flag
from ofa_fleet.errors import InvalidArgumentError

# torch loads in the handlers (training.scratch_reference imports it), so that
# building the parser stays light.
if TYPE_CHECKING:
    from ofa_fleet.carbon.scratch_reference import ScratchReference


def add_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the ``carbon`` group; returns its subcommands, for more to be added to it."""
    carbon = sub.add_parser("carbon", help="energy and emissions: the carbon ledger")
    actions = carbon.add_subparsers(dest="action", required=True)
    add_reference_command(actions)
    return actions


def add_reference_command(actions: argparse._SubParsersAction) -> None:
    reference = actions.add_parser(
        "reference",
        help="measure training specialized networks from scratch to their OFA accuracy",
    )
    add_checkpoint_flag(reference)
    reference.add_argument("--data", help="default: the checkpoint's own dataset")
    reference.add_argument(
        "--arch",
        action="append",
        help="max, min or an arch string; repeat for more (default: the middle and smallest)",
    )
    reference.add_argument(
        "--epoch-cap", type=int, default=DEFAULT_EPOCH_CAP, help="most epochs per network"
    )
    add_device_flag(reference)
    add_json_flag(reference)
    reference.set_defaults(handler=run_reference)


def run_reference(args: argparse.Namespace) -> dict[str, Any]:
    if args.epoch_cap < 1:
        raise InvalidArgumentError("--epoch-cap must be at least 1")
    from ofa_fleet.carbon.scratch_reference import save_scratch_reference
    from ofa_fleet.core.accelerator import resolve_accelerator
    from ofa_fleet.core.checkpoint import load_checkpoint
    from ofa_fleet.subnet import resolve_arch
    from ofa_fleet.training.checkpoint_data import load_checkpoint_data

    checkpoint = load_checkpoint(args.checkpoint)
    if not checkpoint.finished:
        raise InvalidArgumentError(
            f"{args.checkpoint} has not finished training; a reference is measured against "
            "the finished supernet (ofa-fleet train --resume)"
        )
    archs = [resolve_arch(text, checkpoint) for text in args.arch] if args.arch else None
    splits = load_checkpoint_data(checkpoint, args.data)
    accelerator = resolve_accelerator(args.device)
    from ofa_fleet.stack.supernet import measure_with_progress

    reference = measure_with_progress(checkpoint, splits, archs, args.epoch_cap, accelerator)
    out = save_scratch_reference(args.checkpoint, reference)
    return reference_summary(reference, out)


def reference_summary(reference: ScratchReference, out: Path) -> dict[str, Any]:
    cost = reference.cost_per_network
    return {
        "out": str(out),
        "supernet_version": reference.supernet_version,
        "archs": ", ".join(reference.archs),
        "target_top1": round(reference.target_top1, 4),
        "reached_top1": round(reference.reached_top1, 4),
        "all_reached": reference.all_reached,
        "epochs": round(reference.epochs, 2),
        "epoch_cap": reference.epoch_cap,
        "cpu_seconds_per_network": round(cost.cpu_seconds, 2),
        "joules_per_network": round(cost.joules, 1),
        "co2e_grams_per_network": round(cost.co2e_grams, 4),
        "seconds": round(reference.wall_seconds, 1),
    }
