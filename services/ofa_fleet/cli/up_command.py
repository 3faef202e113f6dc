"""`ofa-fleet up`: registry, search and delivery on this machine until Ctrl-C or SIGTERM.

The first start trains a supernet on ``digits`` and fits its accuracy predictor (with
progress bars); later starts reuse them. Once all three servers answer their health
checks, it prints their addresses, where the operator token is, and the environment
lines that point the other commands at them. Ctrl-C or SIGTERM stops the servers and exits
0; a server that exits by itself stops the rest and exits non-zero, naming it.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from ofa_fleet.cli.serve_command import DELIVERY_PORT, REGISTRY_PORT, SEARCH_PORT
from ofa_fleet.console.output import stderr_console, write_machine
from ofa_fleet.stack.health import ChildExitedError
from ofa_fleet.stack.local_stack import LocalStack, StackSettings


def add_command(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser("up", help="run registry, search and delivery on this machine")
    add_stack_flags(up, Path("runs/up"))
    up.add_argument("--json", action="store_true", help="print the addresses as one JSON line")
    up.set_defaults(handler=run_up)


def add_stack_flags(
    parser: argparse.ArgumentParser, workdir: Path, default_port: int | None = None
) -> None:
    parser.add_argument(
        "--workdir", type=Path, default=workdir, help=f"state of the stack (default {workdir})"
    )
    ports = {"registry": REGISTRY_PORT, "search": SEARCH_PORT, "delivery": DELIVERY_PORT}
    for service, port in ports.items():
        port = port if default_port is None else default_port
        parser.add_argument(
            f"--{service}-port", type=int, default=port, help=f"default {port}; 0: any free port"
        )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="serve this supernet instead of WORKDIR/supernet.ckpt (trained on first use)",
    )
    parser.add_argument(
        "--epochs-per-phase", type=int, help="first training: epochs per phase (default: built-in)"
    )


def stack_settings(args: argparse.Namespace) -> StackSettings:
    return StackSettings(
        workdir=args.workdir,
        checkpoint=args.checkpoint,
        registry_port=args.registry_port,
        search_port=args.search_port,
        delivery_port=args.delivery_port,
        epochs_per_phase=args.epochs_per_phase,
    )


def run_up(args: argparse.Namespace) -> None:
    stack = LocalStack(stack_settings(args))
    with signals_as_interrupts():
        try:
            stack.start()
            show_ready(stack, args.json)
            failure = stack.watch()
        except KeyboardInterrupt:
            stop_quietly(stack, args.json)
            return
        except ChildExitedError as error:  # while starting
            failure = error
        finally:
            with ignoring_signals():
                stack.stop()
    stderr_console.print(f"[red]the end of {failure.log_path}:[/]\n{failure.log_tail}")
    raise failure


def stop_quietly(stack: LocalStack, as_json: bool) -> None:
    """Ctrl-C or SIGTERM: every server stopped; a second signal cannot cut that short."""
    if not as_json:
        stderr_console.print("stopping ...")
    with ignoring_signals():
        codes = stack.stop()
    if not as_json:
        stderr_console.print(f"stopped: {', '.join(f'{k} ({v})' for k, v in codes.items())}")


def show_ready(stack: LocalStack, as_json: bool) -> None:
    addresses = stack.addresses
    info: dict[str, Any] = {
        "registry": addresses.registry,
        "search": addresses.search,
        "delivery": addresses.delivery,
        "metrics": stack.metrics_addresses,
        "operator_token_file": str(stack.token_file),
        "logs": str(stack.settings.log_dir),
    }
    if as_json:
        write_machine(info)
        return
    for name in ("registry", "search", "delivery"):
        metrics = info["metrics"].get(name)
        shown = f"  (metrics http://{metrics}/metrics)" if metrics else ""
        stderr_console.print(f"[bold]{name:<9}[/] {info[name]}{shown}")
    stderr_console.print(f"operator token in {stack.token_file}; logs in {info['logs']}/")
    stderr_console.print("To use it from another shell:", style="bold")
    for line in env_lines(stack):
        print(line, flush=True)
    stderr_console.print("Ctrl-C stops all three.")


def env_lines(stack: LocalStack) -> list[str]:
    addresses = stack.addresses
    return [
        f"export OFA_FLEET_REGISTRY={addresses.registry}",
        f"export OFA_FLEET_SEARCH={addresses.search}",
        f"export OFA_FLEET_DELIVERY={addresses.delivery}",
        f'export OFA_FLEET_OPERATOR_TOKEN="$(cat {stack.token_file.resolve()})"',
    ]


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM end `up` the same clean way. SIGINT is set here too, not left
    to Python: a shell starts a background job (`up &`) with SIGINT ignored, and Python
    keeps an ignored SIGINT ignored, so `kill -INT` would do nothing."""
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def ignoring_signals() -> Iterator[None]:
    """While the servers stop; stopping is bounded (each is killed after its timeout)."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
