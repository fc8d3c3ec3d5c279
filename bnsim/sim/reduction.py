"""The combine at a kernel's end of the partial sums its threads made (BN statistics, weight
gradients, the loss), and the single write of each reduced tensor.
"""

from __future__ import annotations

import math
from typing import Any

from bnsim.schedule import Box
from bnsim.sim.mlp import core_window
from bnsim.trace import Trace
from bnsim.trace.dataflow import store_kind


def reduction_cycles(trace: Trace, memory: Any, index: int, now: float) -> float:
    """Combine of per-thread partial sums, plus writing each reduced tensor once.

    A tensor's partial sums come from every thread that ran a box touching it; the combine reads
    the other threads' partials (line by line, at the LLC latency, with the core's outstanding
    misses) and adds them (one element per lane per cycle): one thread alone, or for weight
    gradients all the threads holding partials, each a share of the tensor. The result is
    stored as the library stores the op's outputs (a GPU allocates its lines without reading).
    """
    reductions = trace.reductions(index)
    if not reductions:
        return 0.0
    threads = trace.work(index).threads
    kernel = trace.schedule.kernels[index]
    axes = [axis.name for axis in kernel.space]
    c_axis = axes.index("c") if "c" in axes else None
    machine = trace.machine
    element_bytes = machine.dtype_bytes()
    cycles = 0.0
    line = machine.llc.block_bytes
    working = sum(1 for boxes in threads if boxes)
    holders = max(1, working)
    copies = shared_channels(threads, c_axis) if c_axis is not None else 0
    for reduction in reductions:
        if c_axis is None or reduction.channel_axis_elements == 0:
            extra = (working - 1) * (reduction.channel_axis_elements or 1)
        else:
            extra = copies * reduction.channel_axis_elements
        lines = math.ceil(extra * element_bytes / line)
        combine = lines * machine.llc.latency_cycles / core_window(machine)
        combine += extra / machine.cores.simd_lanes
        cycles += combine / holders if reduction.parallel else combine
        kind = store_kind(trace.schedule, kernel, trace.sources[reduction.source].op, machine)
        for start, stop in trace.runs(reduction.tensor, {}):
            memory.write(0, start, stop, reduction.source, now, kind)
    if cycles:
        cycles += machine.compute.kernel_overhead_cycles / 2  # the barrier before the combine
    return cycles


def shared_channels(threads: tuple[tuple[Box, ...], ...], c_axis: int) -> int:
    """Partial sums beyond the first thread's, counted in channels and summed over the channels:
    per channel, the threads whose boxes touch it, less one."""
    events: list[tuple[int, int]] = []
    for boxes in threads:
        merged: list[list[int]] = []
        for low, high in sorted(box[c_axis] for box in boxes):
            if merged and low <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        events += [(low, 1) for low, _ in merged] + [(high, -1) for _, high in merged]
    events.sort()
    extra, holders, previous = 0, 0, 0
    for position, change in events:
        extra += max(0, holders - 1) * (position - previous)
        holders += change
        previous = position
    return extra
