"""The fleet simulator: many device agents in one process, for load and fault tests."""

from ofa_fleet.fleet.simulator import SimulationSettings, simulate_fleet
from ofa_fleet.fleet.summary import DeviceOutcome, SimulationSummary

__all__ = ["DeviceOutcome", "SimulationSettings", "SimulationSummary", "simulate_fleet"]
