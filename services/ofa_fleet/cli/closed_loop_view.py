"""What `ofa-fleet demo --closed-loop` shows: a line per device kind while the loop runs,
then each kind before (the profile's word) and after (its devices' tables)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ofa_fleet.console.output import stderr_console
from ofa_fleet.stack.closed_loop import ClosedLoopResult, StageResult
from ofa_fleet.stack.demo_fleets import DemoFleet


class ClosedLoopProgress:
    """A spinner for the stage, and a line per kind with where its loop stands."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
            console=stderr_console,
        )
        self.stage_task = self.progress.add_task("closed loop", state="starting")
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> ClosedLoopProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def stage(self, text: str) -> None:
        self.progress.update(self.stage_task, state=text)

    def kinds_ready(self, fleets: list[DemoFleet]) -> None:
        for fleet in fleets:
            self.tasks[fleet.profile_name] = self.progress.add_task(
                fleet.profile_name, state="waiting for its first model"
            )

    def kind_state(self, profile: str, text: str) -> None:
        self.progress.update(self.tasks[profile], state=text)  # type: ignore[arg-type]


def print_closed_loop(result: ClosedLoopResult, console: Console | None = None) -> None:
    share = result.within_budget / result.devices if result.devices else 0.0
    settled = (
        f"settled in {result.seconds_to_settle:.0f} s"
        if result.settled
        else f"not settled within the deadline ({result.seconds_to_settle:.0f} s)"
    )
    table = Table(
        title=f"{result.within_budget} of {result.devices} devices within budget "
        f"({share:.0%}); the loop {settled}",
        caption="before: the first model (no table yet); after: the model chosen from the "
        "kind's devices' own latency tables. pred.: the manifest's prediction and its "
        "source; meas.: median of what the kind's devices measured running it here",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("kind", no_wrap=True)
    table.add_column("graph\nopt.")
    table.add_column("budget\nms", justify="right")
    for stage in ("before", "after"):
        for column in ("source", "MACs", "pred.\nms", "meas.\nms", "within\nbudget"):
            table.add_column(f"{stage}\n{column}", justify="right")
    table.add_column("table\ndevices", justify="right")
    table.add_column("table model\nafter s", justify="right")
    for kind in result.kinds:
        table.add_row(
            kind.kind,
            kind.graph_optimization,
            f"{kind.budget_ms:.3f}",
            *_stage_cells(kind.before),
            *_stage_cells(kind.after),
            str(kind.table_devices),
            "-" if kind.seconds_to_table_model is None else f"{kind.seconds_to_table_model:.0f}",
        )
    console = console or Console()
    console.print(table)
    for kind in result.kinds:
        if kind.calibration is not None:
            c = kind.calibration
            console.print(
                f"[bold]{kind.kind}[/]: budget set between the smallest subnet's "
                f"{c.smallest_ms:.3f} ms and the largest's {c.largest_ms:.3f} ms, timed here"
            )
    for kind in result.kinds:
        if kind.state != "current":
            console.print(
                f"[bold]{kind.kind}[/]: {kind.state}: no subnet meets what its devices "
                "measured; they run the last model that did"
                if kind.state == "infeasible"
                else f"[bold]{kind.kind}[/]: {kind.state} when the loop ended"
            )
    if result.cpus is None:
        console.print("the devices shared the CPU with the servers (no CPU affinity here)")
    else:
        console.print(
            f"servers on CPU {list(result.cpus.servers)}, devices on CPU "
            f"{list(result.cpus.devices)}"
        )
    for error, count in result.errors.items():
        console.print(f"[red]{count} device(s): {error}[/]")


def _stage_cells(stage: StageResult) -> list[str]:
    model = stage.model
    if model is None:
        return ["-"] * 5
    median = stage.median_ms
    within = stage.within_budget
    colour = "green" if within == len(stage.measured_ms) else "red"
    return [
        model.latency_source,
        f"{model.macs / 1e6:.2f}M",
        f"{model.predicted_latency_ms:.3f}",
        "-" if median is None else f"{median:.3f}",
        f"[{colour}]{within}/{len(stage.measured_ms)}[/]",
    ]
