"""`ofa-fleet device run`: what a device runs, to get, check, run and report its model.

With `--once` it enrols if needed, boots (download, verify, install, smoke test, measure,
report) and exits, printing what it did. Without, it boots, then follows delivery's
`WatchModel` (booting again for each new model it names) and heartbeats until SIGTERM or
SIGINT. Progress is logged as JSON lines on stderr; the result goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ofa_fleet.cli.common_flags import add_json_flag, add_log_level_flag
from ofa_fleet.cli.connection_flags import add_endpoint_flags, add_tls_flags, tls_files
from ofa_fleet.inference.graph_optimization import DEFAULT_GRAPH_OPTIMIZATION, GRAPH_OPTIMIZATIONS

if TYPE_CHECKING:
    from ofa_fleet.agent.runner import AgentResult

FLEET_TOKEN_ENV = "OFA_FLEET_FLEET_TOKEN"


def add_command(sub: argparse._SubParsersAction) -> None:
    device = sub.add_parser("device", help="the device agent")
    actions = device.add_subparsers(dest="action", required=True, parser_class=type(device))
    run = actions.add_parser(
        "run", help="enrol once, fetch and verify this device's model, run it, report"
    )
    add_endpoint_flags(run, "registry", "delivery")
    run.add_argument(
        "--fleet-token",
        default=os.environ.get(FLEET_TOKEN_ENV),
        help=f"the fleet's enrolment token, needed only to enrol (env {FLEET_TOKEN_ENV})",
    )
    run.add_argument(
        "--state", required=True, type=Path, help="state directory (identity, model, key)"
    )
    run.add_argument("--hardware-id", help="this device's label (default: from the machine)")
    run.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    run.add_argument(
        "--graph-optimization",
        choices=GRAPH_OPTIMIZATIONS,
        default=DEFAULT_GRAPH_OPTIMIZATION,
        help="onnxruntime graph optimizations for the model; as the profile's runtime says "
        f"(default {DEFAULT_GRAPH_OPTIMIZATION})",
    )
    run.add_argument("--once", action="store_true", help="boot, report and exit")
    run.add_argument(
        "--heartbeat-seconds",
        type=float,
        default=30.0,
        help="between heartbeats until the registry names its interval, which it does in "
        "every answer (default 30)",
    )
    run.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    run.add_argument(
        "--download-timeout",
        type=float,
        default=600.0,
        help="seconds per ReadModel call, and per wait for a model still being made",
    )
    run.add_argument(
        "--on-model",
        metavar="COMMAND",
        help="run after each boot that makes a model current (and once at start), with "
        "OFA_FLEET_MODEL_PATH, _LINK, _SHA256, _ARCH and OFA_FLEET_PROFILE set; STATE/"
        "current.onnx always links the current model",
    )
    run.add_argument(
        "--on-model-timeout",
        type=float,
        default=60.0,
        help="seconds the --on-model command may take (default 60)",
    )
    run.add_argument(
        "--deadline",
        type=float,
        help="with --once: give up after this many seconds in all (default: keep trying, "
        "as a device with nothing better to do does); a script's bound on a wrong address",
    )
    run.add_argument(
        "--no-latency-table",
        action="store_true",
        help="never measure this device's latency table, even when its profile asks its "
        "devices to (measure_on_devices); without --once the agent measures once per "
        "search space when asked",
    )
    add_tls_flags(run)
    add_log_level_flag(run, "info", "debug", "info", "warning")
    add_json_flag(run)
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from ofa_fleet.agent.boot import BootSettings
    from ofa_fleet.agent.connections import Endpoints
    from ofa_fleet.agent.download import DownloadTimeouts
    from ofa_fleet.agent.latency_measurement import MeasureSettings
    from ofa_fleet.agent.runner import Agent, AgentConfig
    from ofa_fleet.errors import InvalidArgumentError
    from ofa_fleet.serving.logs import configure_logging

    for flag, value in (
        ("--timeout", args.timeout),
        ("--download-timeout", args.download_timeout),
        ("--deadline", 1.0 if args.deadline is None else args.deadline),
    ):
        if not value > 0:
            raise InvalidArgumentError(f"{flag} must be positive, got {value}")
    if args.deadline is not None and not args.once:
        raise InvalidArgumentError("--deadline bounds a single boot: give it with --once")
    config = AgentConfig(
        state_dir=args.state,
        endpoints=Endpoints(
            registry=args.registry,
            delivery=args.delivery,
            tls=tls_files(args),
            call_timeout_seconds=args.timeout,
        ),
        fleet_token=args.fleet_token,
        hardware_id=args.hardware_id,
        heartbeat_seconds=args.heartbeat_seconds,
        on_model=args.on_model,
        on_model_seconds=args.on_model_timeout,
        measurement=None if args.no_latency_table else MeasureSettings(),
        boot=BootSettings(
            threads=args.threads,
            graph_optimization=args.graph_optimization,
            download=DownloadTimeouts(call_seconds=args.download_timeout),
            wait_while_infeasible=not args.once,
        ),
    )
    configure_logging(args.log_level)
    result = asyncio.run(_within(Agent(config).run(once=args.once), args.deadline))
    output = result.boot.to_dict()
    if result.measured is not None:
        sent = result.measured.submitted
        output["latency_table"] = {
            "profile": sent.profile_name,
            "profile_revision": sent.profile_revision,
            "devices_merged": sent.devices_merged,
            "cpu_seconds": round(result.measured.cost.cpu_seconds, 3),
        }
    if not args.once:
        output.update(
            heartbeats=result.heartbeats,
            stopped_by=result.stopped_by,
            updates=[update.to_dict() for update in result.updates],
        )
    return output


async def _within(run: Coroutine[Any, Any, AgentResult], deadline: float | None) -> AgentResult:
    """The agent's run, given up after `deadline` seconds (None: never)."""
    from ofa_fleet.errors import UnavailableError

    try:
        return await asyncio.wait_for(run, deadline)
    except TimeoutError:
        raise UnavailableError(
            f"no model running after --deadline {deadline:g} s; each failed attempt is "
            "logged above (what is downloaded is kept for the next start)"
        ) from None
