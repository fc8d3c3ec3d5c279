"""The discrete-event chip-multiprocessor model: `simulate(schedule, machine, options)`."""

from bnsim.sim.engine import simulate

__all__ = ["simulate"]
