"""Memory-level parallelism: the line requests a core keeps in flight, and their round trip.

A core's window is its miss-status holding registers (`cores.max_outstanding_misses`: a CPU core's
L1 line fill buffers, a GPU SM's outstanding loads); a stream prefetcher (`cores.prefetch`) keeps
`distance` more lines in flight ahead of them, as many as the prefetching level's queue tracks. A
request's round trip is the machine's idle DRAM latency (`dram.latency`, a pointer chase): the
device's own part (tRCD + CL + one burst, read from a closed bank) is timed by the DRAM model; the
rest, the path between the core and the controller, is `loop_clocks`; a DRAM write holds its slot
for that path (`dram_write_cycles`), a read for the whole round trip (`dram_read_cycles`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bnsim.config.machine import Machine


def core_window(machine: Machine) -> int:
    """Line requests one core keeps in flight while it streams through memory."""
    demand = machine.cores.max_outstanding_misses
    prefetch = machine.cores.prefetch
    if prefetch is None or not prefetch.distance:
        return demand
    return min(prefetch.queue, demand + prefetch.distance)


def dram_read_cycles(machine: Machine) -> float:
    """Core cycles a DRAM read holds a slot of its core's window: the idle latency."""
    return machine.dram.latency_s * machine.cores.clock_hz


def dram_write_cycles(machine: Machine) -> float:
    """Core cycles a DRAM write holds a slot of its core's window: its path to the controller."""
    return loop_clocks(machine) / machine.dram.device.clock_hz * machine.cores.clock_hz


def loop_clocks(machine: Machine) -> int:
    """DRAM clocks of a request's round trip outside the DRAM devices."""
    return machine.dram.path_clocks()
