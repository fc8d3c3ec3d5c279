"""The discrete-event chip-multiprocessor model: `simulate(schedule, machine, options)`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bnsim.sim.engine import simulate

__all__ = ["simulate"]


def __getattr__(name: str) -> Any:
    # the engine loads on first use: the CLI's parser names the DRAM model's kernels
    # (bnsim.sim.membench) and `bnsim --help` should not wait for the simulator
    if name == "simulate":
        from bnsim.sim.engine import simulate  # noqa: PLC0415

        return simulate
    raise AttributeError(f"module 'bnsim.sim' has no attribute {name!r}")
