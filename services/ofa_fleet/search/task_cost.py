"""What a Ray task drew, measured where it ran and added up where it was asked for.

A specialization's CPU time is mostly spent in Ray workers, other processes, often other
machines: the driver's own meter cannot see it. So each task meters itself (all threads of
its worker process, since torch and onnxruntime compute on their own threads) and returns
its CPU seconds and joules beside its value. Joules are fixed there, by the power model of
the machine that did the work; grams are set later by whoever records the entry.

Specializations run concurrently in one server, each on its own thread, so the figures
go into a `TaskTally` the caller owns, never into anything shared.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Generic, ParamSpec, TypeVar

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.carbon.meter import EnergyModel

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")

_model: EnergyModel | None = None
_model_lock = threading.Lock()


def process_energy_model() -> EnergyModel:
    """This process's energy model, built once: detecting RAPL reads sysfs, per task it
    would be noise in the very figure it measures."""
    global _model
    with _model_lock:
        if _model is None:
            _model = EnergyModel.from_environment()
        return _model


@dataclass(frozen=True)
class Metered(Generic[T]):
    """A task's value and what computing it drew in its worker process."""

    value: T
    cpu_seconds: float
    joules: float


def metered(fn: Callable[P, T]) -> Callable[P, Metered[T]]:
    """``fn`` metered (process scope) in whichever process runs it."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> Metered[T]:
        with process_energy_model().meter() as reading:
            value = fn(*args, **kwargs)
        return Metered(value, reading.cpu_seconds, reading.joules)

    return run


def metered_steps(
    fn: Callable[P, Generator[S, None, T]],
) -> Callable[P, Iterator[S | Metered[T]]]:
    """A generator ``fn`` metered the same way: its steps as it yields them, then its
    return value as one last `Metered` step (a Ray generator task streams only what is
    yielded, so the outcome and its cost travel as a step of their own)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> Iterator[S | Metered[T]]:
        with process_energy_model().meter() as reading:
            value = yield from fn(*args, **kwargs)
        yield Metered(value, reading.cpu_seconds, reading.joules)

    return run


class TaskTally:
    """CPU seconds and joules of the tasks of one piece of work (one specialization).

    Tasks that failed or were cancelled return nothing and are not counted: a tally is
    what finished, a lower bound when a worker was lost and its task retried.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tasks = 0
        self.cpu_seconds = 0.0
        self.joules = 0.0

    def add(self, result: Metered[object]) -> None:
        with self._lock:
            self.tasks += 1
            self.cpu_seconds += result.cpu_seconds
            self.joules += result.joules

    def cost(self, model: EnergyModel) -> EnergyCost:
        """The tasks' entry, in grams of the grid ``model`` (the recorder's) names."""
        with self._lock:
            return model.cost_of(self.cpu_seconds, self.joules)
