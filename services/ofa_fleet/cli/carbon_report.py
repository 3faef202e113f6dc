"""`ofa-fleet carbon report [--fleet F] [--json]`: what training once cost and saved.

Reads delivery's `GetCarbonLedger`: the supernet's training per phase and its predictor
fit (paid once), every specialization, every device's on-boot profiling, each profile's
amortized share, the cost per served device, and the counterfactual of training one
specialized network per profile from scratch (measured, not quoted) with the ratio and
the number of profiles from which training once is cheaper.
"""

from __future__ import annotations

import argparse
from typing import Any

from google.protobuf.json_format import MessageToDict
from rich import box
from rich.console import Console
from rich.table import Table

from ofa_fleet.cli.operator_commands import add_delivery_command
from ofa_fleet.serving.delivery_client import DeliveryClient
from ofa_fleet.v1 import common_pb2
from ofa_fleet.v1 import delivery_pb2 as pb


def add_report_command(carbon: argparse._SubParsersAction) -> None:
    report = add_delivery_command(
        carbon, "report", "energy and CO2e of training once against one net per profile", _report
    )
    report.add_argument("--fleet", default="", help="only this fleet's share")


async def _report(args: argparse.Namespace, delivery: DeliveryClient) -> dict[str, Any] | None:
    answer = await delivery.carbon_ledger(args.fleet)
    if args.json:
        return MessageToDict(
            answer, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    print_report(answer, Console())
    return None


def energy(joules: float) -> str:
    """Joules in the unit a person reads best (J, kJ, MJ, with Wh alongside past 1 kJ)."""
    if joules < 1_000:
        return f"{joules:.1f} J"
    wh = joules / 3600
    if joules < 1_000_000:
        return f"{joules / 1e3:.2f} kJ ({wh:.2f} Wh)"
    return f"{joules / 1e6:.2f} MJ ({wh / 1e3:.2f} kWh)"


def short_energy(joules: float) -> str:
    return f"{joules:.0f} J" if joules < 1_000 else f"{joules / 1e3:.2f} kJ"


def grams(value: float) -> str:
    return f"{value:.3f} g" if value < 1_000 else f"{value / 1e3:.3f} kg"


def _cost_cells(cost: common_pb2.EnergyCost) -> tuple[str, str, str]:
    return f"{cost.cpu_seconds:.1f}", energy(cost.energy_joules), grams(cost.co2e_grams)


def print_report(answer: pb.GetCarbonLedgerResponse, console: Console) -> None:
    summary = Table(
        title=f"carbon ledger, supernet {answer.supernet_version or '(unknown)'}",
        box=box.SIMPLE_HEAD,
    )
    summary.add_column("")
    for column in ("CPU s", "energy", "CO2e"):
        summary.add_column(column, justify="right")
    for phase in answer.training:
        summary.add_row(f"training: {phase.detail}", *_cost_cells(phase.cost))
    summary.add_row("[bold]training[/]", *_cost_cells(answer.training_total))
    summary.add_row("predictor fit", *_cost_cells(answer.predictor_fit))
    summary.add_row(
        f"specializations ({answer.specialized_profiles} profiles)",
        *_cost_cells(answer.specialization_total),
    )
    summary.add_row(
        f"device profiling ({answer.devices} devices)", *_cost_cells(answer.device_profiling_total)
    )
    summary.add_row("[bold]once-for-all total[/]", *_cost_cells(answer.once_for_all_total))
    if answer.HasField("per_served_device"):
        summary.add_row(
            f"per served device ({answer.served_devices})", *_cost_cells(answer.per_served_device)
        )
    if answer.HasField("counterfactual"):
        summary.add_row("scratch, one network", *_cost_cells(answer.scratch_per_network))
        summary.add_row(
            f"[bold]one network per profile[/] ({answer.specialized_profiles})",
            *_cost_cells(answer.counterfactual),
        )
    console.print(summary)
    if answer.training_unavailable_reason:
        console.print(f"training: {answer.training_unavailable_reason}")
    if answer.counterfactual_unavailable_reason:
        console.print(f"counterfactual: {answer.counterfactual_unavailable_reason}")
    elif answer.HasField("ratio") and answer.ratio.HasField("energy_joules"):
        line = f"training one network per profile would draw {answer.ratio.energy_joules:.2f}x"
        line += " the energy of training once"
        if answer.HasField("break_even_profiles") and answer.break_even_profiles.HasField(
            "energy_joules"
        ):
            even = answer.break_even_profiles.energy_joules
            line += f"; it breaks even at {even:.1f} profiles"
        console.print(line)
    if answer.fleets:
        fleets = Table(title="fleets", box=box.SIMPLE_HEAD)
        for column in (
            "fleet",
            "profile",
            "served",
            "attributed",
            "per device",
            "scratch",
            "ratio",
        ):
            left = column in ("fleet", "profile")
            fleets.add_column(column, justify="left" if left else "right", no_wrap=left)
        for fleet in answer.fleets:
            fleets.add_row(
                fleet.fleet_name,
                fleet.profile_name,
                f"{fleet.served_devices}/{fleet.devices}",
                short_energy(fleet.attributed.energy_joules),
                short_energy(fleet.per_served_device.energy_joules)
                if fleet.HasField("per_served_device")
                else "-",
                short_energy(fleet.counterfactual.energy_joules)
                if fleet.HasField("counterfactual")
                else "-",
                f"{fleet.ratio.energy_joules:.2f}x"
                if fleet.ratio.HasField("energy_joules")
                else "-",
            )
        console.print(fleets)
