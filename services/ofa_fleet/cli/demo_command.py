"""`ofa-fleet demo`: the whole system on this machine, from nothing to a served fleet.

Starts the stack `ofa-fleet up` runs (training a supernet on ``digits`` the first time),
creates the example hardware profiles and a fleet for each, boots a simulated fleet of
devices over them, and shows what every profile got: its subnet, what it costs, its
latency predicted for the profile's hardware next to what its devices measured here,
and how many devices run it. Exits non-zero when any device was not served.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ofa_fleet.cli.closed_loop_view import ClosedLoopProgress, print_closed_loop
from ofa_fleet.cli.common_flags import add_json_flag
from ofa_fleet.cli.up_command import add_stack_flags, signals_as_interrupts, stack_settings
from ofa_fleet.console.output import emit, stderr_console
from ofa_fleet.errors import CancelledError, InvalidArgumentError, UnavailableError
from ofa_fleet.fleet.summary import DeviceOutcome
from ofa_fleet.stack.closed_loop import ClosedLoopSettings, run_closed_loop
from ofa_fleet.stack.demo import DemoSettings, run_demo
from ofa_fleet.stack.demo_fleets import DemoFleet
from ofa_fleet.stack.demo_results import CarbonSummary, DemoResult, ProfileResult
from ofa_fleet.stack.local_stack import LocalStack

T = TypeVar("T")

# The example profiles of this repository (an editable install), else ./deploy/profiles.
REPOSITORY_PROFILES = Path(__file__).resolve().parents[3] / "deploy" / "profiles"


def add_command(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo", help="servers, example profiles and a simulated fleet, all on this machine"
    )
    add_stack_flags(demo, Path("runs/demo"), default_port=0)
    demo.add_argument("--devices", type=int, default=30, help="simulated devices (default 30)")
    demo.add_argument(
        "--profiles",
        type=Path,
        default=REPOSITORY_PROFILES if REPOSITORY_PROFILES.is_dir() else Path("deploy/profiles"),
        help="folder of hardware profiles, one fleet each (default: deploy/profiles)",
    )
    demo.add_argument(
        "--deadline-seconds", type=float, default=600.0, help="for every device to be served"
    )
    demo.add_argument(
        "--closed-loop",
        action="store_true",
        help="instead: device kinds that differ in speed here measure their own latency "
        "tables, until each runs a model chosen from them (minutes; see README)",
    )
    demo.add_argument(
        "--devices-per-kind",
        type=int,
        default=3,
        help="with --closed-loop: simulated devices of each kind (default 3)",
    )
    add_json_flag(demo)
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.devices < 1:
        raise InvalidArgumentError("--devices must be at least 1")
    if args.deadline_seconds <= 0:
        raise InvalidArgumentError("--deadline-seconds must be positive")
    if args.closed_loop:
        return run_closed_loop_demo(args)
    settings = DemoSettings(args.profiles, args.devices, args.deadline_seconds)
    stack = LocalStack(stack_settings(args))
    # The stack starts (and perhaps trains, with bars of its own) before this display.
    started = time.monotonic()
    with signals_as_interrupts(), stack, DemoProgress() as display:
        start_seconds = time.monotonic() - started
        result = asyncio.run(run_demo(stack, settings, display))
    result = dataclasses.replace(
        result,
        seconds_to_start=round(start_seconds, 1),
        seconds=round(time.monotonic() - started, 1),
    )
    if args.json:
        emit(result.to_json(), True, "ofa-fleet demo")
    else:
        print_table(result)
    if result.missing:
        first = next(iter(result.errors), "no error recorded")
        raise UnavailableError(
            f"{result.missing} of {result.devices} devices were not served (e.g. {first}); "
            f"server logs in {stack.settings.log_dir}"
        )
    return None


def run_closed_loop_demo(args: argparse.Namespace) -> dict[str, Any] | None:
    settings = ClosedLoopSettings(args.devices_per_kind, deadline_seconds=args.deadline_seconds)
    stack = LocalStack(stack_settings(args))
    started = time.monotonic()
    with signals_as_interrupts(), stack, ClosedLoopProgress() as display:
        result = asyncio.run(_interruptible(run_closed_loop(stack, settings, display)))
    result = dataclasses.replace(result, seconds=round(time.monotonic() - started, 1))
    if args.json:
        emit(result.to_json(), True, "ofa-fleet demo --closed-loop")
    else:
        print_closed_loop(result)
    served = sum(len(k.after.measured_ms) for k in result.kinds)
    if served < result.devices:
        first = next(iter(result.errors), "no error recorded")
        raise UnavailableError(
            f"{result.devices - served} of {result.devices} devices were not served (e.g. "
            f"{first}); server logs in {stack.settings.log_dir}"
        )
    return None


async def _interruptible(work: Coroutine[Any, Any, T]) -> T:
    """``work``, which SIGINT or SIGTERM cancel: the running devices then stop as daemons
    do (cleanly, each at once) before the error says it was interrupted."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    signals: list[str] = []

    def interrupt(name: str) -> None:
        signals.append(name)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt, signum.name)
    try:
        return await work
    except asyncio.CancelledError:
        if not signals:
            raise
        raise CancelledError(f"interrupted by {signals[0]}") from None
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


class DemoProgress:
    """A bar per fleet (devices served), with where its profile's model stands."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
            console=stderr_console,
        )
        self.tasks: dict[str, Any] = {}
        self.fleet_of: dict[str, str] = {}

    def __enter__(self) -> DemoProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def fleets_ready(self, fleets: list[DemoFleet], devices: dict[str, int]) -> None:
        for fleet in fleets:
            self.fleet_of[fleet.profile_name] = fleet.name
            self.tasks[fleet.name] = self.progress.add_task(
                fleet.name, total=devices[fleet.name], state="model: waiting"
            )

    def profile_state(self, profile: str, state: str, error: str) -> None:
        detail = f" ({error[:80]})" if error and state != "ready" else ""
        self.progress.update(self.tasks[self.fleet_of[profile]], state=f"model: {state}{detail}")

    def device_done(self, fleet: str, outcome: DeviceOutcome) -> None:
        self.progress.update(self.tasks[fleet], advance=1)


def print_table(result: DemoResult, console: Console | None = None) -> None:
    """One row per profile (its subnet's arch string below the table: it is long)."""
    table = Table(
        title=f"{result.served} of {result.devices} devices served "
        f"({result.verified} verified on disk)",
        caption="pred.: latency predicted for the profile's hardware (green: within its "
        "budget); meas.: median of the fleet's simulated devices, on this machine",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("profile", no_wrap=True)
    for column in ("MACs", "model\nKiB", "pred.\nms", "meas.\nms", "budget\nms"):
        table.add_column(column, justify="right")
    table.add_column("top-1", justify="right")
    table.add_column("served", justify="right")
    archs = []
    for row in result.profiles:
        model = row.model
        if model is None:
            table.add_row(row.profile, *[""] * 6, _served(row))
            archs.append(f"[bold]{row.profile}[/]: [red]{row.error}[/]")
            continue
        colour = "green" if model.within_budget else "red"
        measured = row.measured_latency_ms
        table.add_row(
            row.profile,
            f"{model.macs / 1e6:.2f}M",
            f"{model.model_bytes / 1024:.0f}",
            f"[{colour}]{model.predicted_latency_ms:.3f}[/]",
            "-" if measured is None else f"{measured:.3f}",
            f"{row.latency_budget_ms:g}",
            f"{model.top1 * 100:.1f}%",
            _served(row),
        )
        archs.append(f"[bold]{row.profile}[/]: {model.arch}")
    console = console or Console()
    console.print(table)
    for line in archs:
        console.print(line, overflow="fold")
    console.print(carbon_table(result))
    console.print(carbon_line(result.carbon))


def carbon_table(result: DemoResult) -> Table:
    """Each profile's energy and CO2e next to one network trained for it from scratch."""
    scratch = result.carbon.scratch_per_network_joules
    table = Table(
        title="energy and emissions per profile",
        caption="OFA: the profile's share of training once (supernet and predictor) plus "
        "its own search; scratch: one network of its kind trained alone to the same "
        "top-1, as measured for this supernet",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("profile", no_wrap=True)
    for column in ("OFA kJ", "OFA g CO2e", "scratch kJ", "scratch / OFA"):
        table.add_column(column, justify="right")
    for row in result.profiles:
        carbon = row.carbon
        if carbon.energy_joules is None or carbon.co2e_grams is None:
            table.add_row(row.profile, "-", "-", "-", "-")
            continue
        ratio = carbon.scratch_to_ofa_ratio
        table.add_row(
            row.profile,
            f"{carbon.energy_joules / 1e3:.2f}",
            f"{carbon.co2e_grams:.3f}",
            "-" if scratch is None else f"{scratch / 1e3:.2f}",
            "-" if ratio is None else f"{ratio:.2f}x",
        )
    return table


def carbon_line(carbon: CarbonSummary) -> str:
    """The fleet-wide saving in one sentence (`ofa-fleet carbon report` has the rest)."""
    total = f"once-for-all: {carbon.once_for_all_joules / 1e3:.2f} kJ"
    total += f", {carbon.once_for_all_co2e_grams:.3f} g CO2e"
    if carbon.ratio is None or carbon.counterfactual_joules is None:
        return f"{total}; no counterfactual ({carbon.unavailable_reason})"
    line = f"{total}; one network per profile from scratch: "
    line += f"{carbon.counterfactual_joules / 1e3:.2f} kJ ({carbon.ratio:.2f}x)"
    if carbon.break_even_profiles is not None:
        line += f"; training once breaks even at {carbon.break_even_profiles:.1f} profiles"
    return line + " (ofa-fleet carbon report)"


def _served(row: ProfileResult) -> str:
    return f"{row.served}/{row.devices}"
