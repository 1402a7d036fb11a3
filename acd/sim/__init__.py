"""A discrete-event simulator of a contact centre around the real routing engine."""

from acd.sim.scenario import Scenario, load_scenario, parse_scenario
from acd.sim.simulator import SimulationReport, simulate

__all__ = ["Scenario", "SimulationReport", "load_scenario", "parse_scenario", "simulate"]
