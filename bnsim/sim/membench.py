"""STREAM on the simulated machine: copy, scale, add, triad and a read-only sum, DRAM-timed.

As STREAM (McCalpin, 1995) runs them: arrays of 8-byte elements, each at least four times the
last-level cache (so every access goes to DRAM), split over the cores as the machine's library
splits a loop (`line_of_turn`), each core walking its lines in order: the kernel's input lines, then
its output line, stored non-temporally (streaming stores, as Intel's compiler builds STREAM for the
figures Intel publishes: no read for ownership). A core keeps at most its window of line requests in
flight (bnsim.sim.mlp); the DRAM model (bnsim.sim.dram) times every burst. The rate is STREAM's:
the bytes the kernel names, over the time from the first request to the last burst.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bnsim.sim.dram import ChannelStats, simulate_arrays
from bnsim.sim.mlp import core_window, loop_clocks

if TYPE_CHECKING:
    from bnsim.config.machine import Machine

ELEMENT_BYTES = 8  # STREAM's doubles
GPU_BLOCK_ELEMENTS = 1024  # BabelStream's CUDA thread block: 1024 threads, one element each
# kernel → (input arrays, output array); STREAM's a, b, c are 0, 1, 2
KERNELS: dict[str, tuple[tuple[int, ...], int | None]] = {
    "copy": ((0,), 2),  # c = a
    "scale": ((2,), 1),  # b = s·c
    "add": ((0, 1), 2),  # c = a + b
    "triad": ((1, 2), 0),  # a = b + s·c
    "read": ((0,), None),  # s += a
}


@dataclass(frozen=True, slots=True)
class MembenchResult:
    """One kernel on one machine."""

    kernel: str
    array_bytes: int  # each array
    cores: int
    seconds: float
    stream_bytes: int  # what STREAM counts: every array element read or written once
    dram_read_bytes: int
    dram_write_bytes: int
    channels: tuple[ChannelStats, ...]
    clocks: int  # DRAM clocks

    @property
    def bytes_per_second(self) -> float:
        """STREAM's rate."""
        return self.stream_bytes / self.seconds

    @property
    def row_hit_rate(self) -> float:
        """Bursts that found their row open, of all bursts."""
        hits = sum(stats.row_hits for stats in self.channels)
        return hits / max(1, sum(stats.reads + stats.writes for stats in self.channels))

    @property
    def bus_utilisation(self) -> float:
        """Clocks the channels' data buses moved data, of all channel clocks."""
        busy = sum(stats.busy_clocks for stats in self.channels)
        return busy / max(1, self.clocks * len(self.channels))


def default_array_bytes(machine: Machine) -> int:
    """STREAM's rule: each array at least four times the LLC, in whole lines per core."""
    quantum = machine.cores.count * machine.llc.block_bytes
    return -(-4 * machine.llc.size_bytes // quantum) * quantum


def line_of_turn(
    machine: Machine, core: np.ndarray, turn: np.ndarray, cores: int, lines_per_core: int
) -> np.ndarray:
    """The array line a core works on at its `turn`-th line, as the machine's library splits a
    loop over cores: a CPU's OpenMP static schedule gives each core one contiguous share; a GPU
    deals blocks of threads (BabelStream's 1024 threads, one element each) to the SMs in turn, as
    its block scheduler hands equal blocks to SMs as they free up."""
    if machine.compute.library != "cudnn":
        return np.asarray(core * lines_per_core + turn)
    block = max(1, GPU_BLOCK_ELEMENTS * ELEMENT_BYTES // machine.llc.block_bytes)
    return np.asarray(((turn // block) * cores + core) * block + turn % block)


def run_kernel(
    machine: Machine, kernel: str, array_bytes: int | None = None, cores: int | None = None
) -> MembenchResult:
    """Time one STREAM kernel on `machine` with `cores` of its cores (default: all)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel: {kernel!r} is not one of {', '.join(KERNELS)}")
    cores = machine.cores.count if cores is None else cores
    if not 1 <= cores <= machine.cores.count:
        raise ValueError(f"cores: {cores} is not between 1 and {machine.cores.count}")
    size = default_array_bytes(machine) if array_bytes is None else array_bytes
    line = machine.llc.block_bytes
    if size <= 0 or size % (cores * line):
        raise ValueError(
            f"array size: {size} bytes is not a positive multiple of {cores} cores × {line} B lines"
        )
    dram = machine.dram
    device = dram.dram_device()
    bursts_per_line = -(-line // device.burst_bytes)
    inputs, output = KERNELS[kernel]
    arrays = (*inputs, output) if output is not None else inputs
    # the arrays one after another, as STREAM declares them (static, OFFSET 0)
    lines_per_core = size // line // cores
    per_line = len(arrays) * bursts_per_line  # a core's requests for one line of the kernel
    core = np.repeat(np.arange(cores, dtype=np.int64), lines_per_core * per_line)
    turn = np.tile(np.repeat(np.arange(lines_per_core, dtype=np.int64), per_line), cores)
    line_index = line_of_turn(machine, core, turn, cores, lines_per_core)
    array = np.tile(np.repeat(np.array(arrays, dtype=np.int64), bursts_per_line), lines_per_core)
    array = np.tile(array, cores)
    burst = np.tile(
        np.arange(bursts_per_line, dtype=np.int64), cores * lines_per_core * len(arrays)
    )
    address = array * size + line_index * line + burst * device.burst_bytes
    is_output = array == output if output is not None else np.zeros(len(array), dtype=bool)
    write = is_output.astype(np.int8)
    controller = dram.controller_settings(
        window=core_window(machine) * bursts_per_line, loop_clocks=loop_clocks(machine)
    )
    outcome = simulate_arrays(
        device, dram.channels, dram.mapping, np.zeros_like(address), address, write, core,
        controller, permute_banks=dram.bank_hash,
    )  # fmt: skip
    reads = sum(stats.reads for stats in outcome.channels) * device.burst_bytes
    writes = sum(stats.writes for stats in outcome.channels) * device.burst_bytes
    return MembenchResult(
        kernel=kernel,
        array_bytes=size,
        cores=cores,
        seconds=outcome.clocks * device.tck_s,
        stream_bytes=len(arrays) * size,
        dram_read_bytes=reads,
        dram_write_bytes=writes,
        channels=outcome.channels,
        clocks=outcome.clocks,
    )
