"""A rich progress bar for training, as a `TrainingObserver`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ofa_fleet.cli.output import stderr_console

if TYPE_CHECKING:
    from ofa_fleet.training.phases import Phase


class RichTrainingProgress:
    """One bar per phase, counting steps; a line per epoch with loss and accuracy."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=stderr_console,
        )
        self.task: Any = None

    def __enter__(self) -> RichTrainingProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def phase_started(self, phase: Phase, epoch: int, steps_per_epoch: int) -> None:
        total = phase.epochs * steps_per_epoch
        self.task = self.progress.add_task(
            f"phase {phase.name:<6}", total=total, completed=epoch * steps_per_epoch, loss=0.0
        )

    def step_done(self, loss: float) -> None:
        self.progress.update(self.task, advance=1, loss=loss)

    def epoch_done(self, record: dict[str, Any]) -> None:
        self.progress.console.log(
            f"{record['phase']:<6} epoch {record['epoch']:>3}  loss {record['loss']:.3f}  "
            f"val top-1 largest {record['val_top1_largest']:.3f}  "
            f"smallest {record['val_top1_smallest']:.3f}"
        )
