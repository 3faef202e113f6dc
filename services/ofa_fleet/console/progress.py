"""A rich progress bar for training, as a `TrainingObserver`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ofa_fleet.console.output import stderr_console

if TYPE_CHECKING:
    from ofa_fleet.training.phases import Phase


class RichTrainingProgress:
    """One bar per phase, counting steps, with images/s and ETA; a line per epoch.

    With several data-parallel ranks the driver feeds it the slowest rank's steps (the
    group moves at its pace) and every rank's images.
    """

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}"),
            TextColumn("{task.fields[rate]:>7.0f} img/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=stderr_console,
        )
        self.task: Any = None
        self._started = time.monotonic()
        self._images = 0

    def __enter__(self) -> RichTrainingProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def phase_started(self, phase: Phase, epoch: int, steps_per_epoch: int) -> None:
        total = phase.epochs * steps_per_epoch
        self.task = self.progress.add_task(
            f"phase {phase.name:<6}",
            total=total,
            completed=epoch * steps_per_epoch,
            loss=0.0,
            rate=0.0,
        )
        self._started, self._images = time.monotonic(), 0

    def steps_done(self, steps: int, images: int, loss: float) -> None:
        self._images += images
        rate = self._images / max(1e-9, time.monotonic() - self._started)
        self.progress.update(self.task, advance=steps, loss=loss, rate=rate)

    def worker_started(self, rank: int, pid: int, node: str) -> None:
        self.progress.console.log(f"worker rank {rank}: pid {pid} on {node}")

    def epoch_done(self, record: dict[str, Any]) -> None:
        self.progress.console.log(
            f"{record['phase']:<6} epoch {record['epoch']:>3}  loss {record['loss']:.3f}  "
            f"val top-1 largest {record['val_top1_largest']:.3f}  "
            f"smallest {record['val_top1_smallest']:.3f}"
        )
