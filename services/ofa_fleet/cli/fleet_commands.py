"""`ofa-fleet fleet simulate`: boot many simulated devices of one fleet, and sum up.

Each device is the real device agent with a state directory of its own under
`--state-root`; a rerun over the same root reuses their identities (no new enrolment)
and their models (up to date, nothing downloaded). Progress is a bar on stderr; the
summary (booted, verified, failed, boot-to-model percentiles, bytes) is a table, or one
JSON object with `--json` that also holds every device's outcome. Any failed device
makes the command end non-zero, with the most frequent error in one line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ofa_fleet.cli.common_flags import add_json_flag, add_log_level_flag
from ofa_fleet.cli.connection_flags import add_endpoint_flags, add_tls_flags, tls_files
from ofa_fleet.cli.device_commands import FLEET_TOKEN_ENV
from ofa_fleet.console.output import stderr_console, write_machine

if TYPE_CHECKING:
    from ofa_fleet.fleet.summary import DeviceOutcome, SimulationSummary

DEFAULT_STATE_PARENT = Path("runs/fleet-simulation")


def add_commands(fleet: argparse._SubParsersAction) -> None:
    """Add `simulate` to the `fleet` group (whose other commands operate the registry)."""
    simulate = fleet.add_parser(
        "simulate", help="boot N simulated devices of a fleet in this process; sum up"
    )
    add_endpoint_flags(simulate, "registry", "delivery")
    simulate.add_argument(
        "--fleet-token",
        default=os.environ.get(FLEET_TOKEN_ENV),
        help=f"the fleet's enrolment token (env {FLEET_TOKEN_ENV})",
    )
    simulate.add_argument("--devices", type=int, default=10, help="how many (default 10)")
    simulate.add_argument(
        "--state-root",
        type=Path,
        help=f"one state directory per device under it (default: {DEFAULT_STATE_PARENT}/"
        "<digest of the token>, so a rerun for the same fleet reuses the devices)",
    )
    simulate.add_argument(
        "--concurrency", type=int, default=0, help="most boots in flight (default 0: all)"
    )
    simulate.add_argument(
        "--threads", type=int, default=1, help="onnxruntime threads per device (default 1)"
    )
    simulate.add_argument(
        "--deadline",
        type=float,
        default=600.0,
        help="seconds for the whole simulation; devices without a model by then fail",
    )
    simulate.add_argument(
        "--own-connections",
        action="store_true",
        help="a connection per device, as real devices have (default: one shared per service)",
    )
    simulate.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    simulate.add_argument(
        "--hardware-id-prefix", default="sim", help="devices are labelled PREFIX-0, PREFIX-1, ..."
    )
    add_tls_flags(simulate)
    add_log_level_flag(simulate, "error", "debug", "info", "warning", "error")
    add_json_flag(simulate)
    simulate.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> None:
    from ofa_fleet.errors import FailedPreconditionError, InvalidArgumentError
    from ofa_fleet.fleet.simulator import SimulationSettings, simulate_fleet

    if not args.fleet_token:
        raise InvalidArgumentError(
            f"give the fleet's enrolment token with --fleet-token or {FLEET_TOKEN_ENV}"
        )
    if args.timeout <= 0:
        raise InvalidArgumentError(f"--timeout must be positive, got {args.timeout}")
    settings = SimulationSettings(
        registry=args.registry,
        delivery=args.delivery,
        fleet_token=args.fleet_token,
        devices=args.devices,
        state_root=args.state_root or default_state_root(args.fleet_token),
        threads=args.threads,
        concurrency=args.concurrency,
        deadline_seconds=args.deadline,
        hardware_id_prefix=args.hardware_id_prefix,
        tls=tls_files(args),
        own_connections=args.own_connections,
        call_timeout_seconds=args.timeout,
    )
    _configure_logging(args.log_level)
    with simulation_progress(settings.devices) as on_outcome:
        summary = asyncio.run(simulate_fleet(settings, on_outcome))
    if args.json:
        write_machine(summary.to_dict())
    else:
        print_summary(summary, settings.state_root)
    if summary.failed:
        error, count = next(iter(summary.errors().items()))
        raise FailedPreconditionError(
            f"{summary.failed} of {summary.devices} devices have no model; {count} of them: {error}"
        )


def default_state_root(fleet_token: str) -> Path:
    """A folder per fleet token, named by a digest so the token itself is not on disk."""
    return DEFAULT_STATE_PARENT / hashlib.sha256(fleet_token.encode()).hexdigest()[:12]


@contextmanager
def simulation_progress(devices: int) -> Iterator[Callable[[DeviceOutcome], None]]:
    """A bar on stderr counting devices done, with booted and failed; yields the hook."""
    progress = Progress(
        TextColumn("[bold]devices"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[booted]} booted[/] [red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=stderr_console,
    )
    task = progress.add_task("devices", total=devices, booted=0, failed=0)
    counts = {"booted": 0, "failed": 0}

    def on_outcome(outcome: DeviceOutcome) -> None:
        counts["booted" if outcome.ok else "failed"] += 1
        progress.update(task, advance=1, booted=counts["booted"], failed=counts["failed"])

    with progress:
        yield on_outcome


def print_summary(summary: SimulationSummary, state_root: Path) -> None:
    table = Table(title=f"simulated fleet ({state_root})", show_header=False)
    table.add_column("field", style="bold", overflow="fold")
    table.add_column("value", overflow="fold")  # an arch is pasted back whole
    rows: list[tuple[str, Any]] = [
        ("devices", summary.devices),
        ("booted", summary.booted),
        ("verified", summary.verified),
        ("failed", summary.failed),
        ("boot-to-model p50", f"{summary.p50_seconds:.3f} s"),
        ("boot-to-model p99", f"{summary.p99_seconds:.3f} s"),
        ("bytes downloaded", f"{summary.bytes_downloaded:,}"),
        ("wall time", f"{summary.wall_seconds:.2f} s"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    Console().print(table)


def _configure_logging(level: str) -> None:
    """The agents' warnings reach the simulator (which names them in a device's error);
    the console shows only `level` and above, so a thousand devices do not flood it."""
    from ofa_fleet.serving.logs import configure_logging

    configure_logging(level if level in ("debug", "info") else "warning")
    for handler in logging.getLogger().handlers:
        handler.setLevel(level.upper())
