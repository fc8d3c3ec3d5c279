"""The discrete-event model: cores run tiles against the memory system, kernels end in barriers.

One SimPy process runs the kernels in order. A kernel hands its tiles to the cores in contiguous
chunks (OpenMP's static schedule); each core runs its tiles one after another, and whichever core is
ready first goes next (a heap of core-ready times: the order of one SimPy process per core). A
tile's accesses go through the memory system when it starts; it then takes as long as the largest of
its compute time, the time its misses need with the core's bounded number of outstanding misses
(Little's law), and the time the DRAM channels need to deliver its reads after the requests queued
before them. A DRAM write (a non-temporal store, or a write-back the step's accesses evict) holds a
slot of the core's window while it travels to the controller (`bnsim.sim.mlp.dram_write_cycles`),
as in the DRAM-timed model (bnsim.sim.dram); it occupies the channels, but nothing waits for it.
After the last tile, the partial sums of reduced tensors are combined serially across the threads
that made them, the result is written, and the kernel pays its fixed overhead (fork/join and
barrier). Time counts core cycles (fractions inside a kernel; results report whole cycles). Imports
bnsim.trace, bnsim.config.machine, bnsim.result, bnsim.schedule, bnsim.graph, bnsim.sim.*; simpy.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from bnsim import units
from bnsim.config.machine import Machine
from bnsim.errors import InfeasibleError, SimulationError
from bnsim.heap import frozen_heap
from bnsim.result import CacheCounters, KernelResult, RunResult, TrafficRow
from bnsim.result.timeline import Timeline
from bnsim.schedule import Kernel, Schedule, check_schedule
from bnsim.sim._memory import CacheBytes, MemorySystem
from bnsim.sim.analytic import simulate_analytic, tensor_accesses
from bnsim.sim.attribution import OpWork, op_times
from bnsim.sim.dramrate import channel_traffic
from bnsim.sim.memory import CacheModel, memory_system
from bnsim.sim.mlp import core_window, dram_read_cycles, dram_write_cycles
from bnsim.sim.reduction import reduction_cycles
from bnsim.trace import BoxWork, SimOptions, Trace

# Line fidelity gets through about this many lines of tensor accesses (the estimate below: each
# tensor an op touches, once) per second, measured on the reference machine (docs/performance.md):
# DenseNet-121 at batch 32, 6.85e8 lines in 10.5 s on the 2026-12-02 machine. Longer runs than the
# limit need --force.
LINE_FIDELITY_LINES_PER_SECOND = 6.5e7
LINE_FIDELITY_LIMIT_SECONDS = 3600.0

ProcessGenerator = Generator[simpy.events.Event, Any, None]
KernelProgress = Callable[[int, int], None]  # (kernels done, kernels in all)


@dataclass
class _KernelTally:
    start: int = 0
    end: int = 0
    flops: int = 0
    compute_cycles: float = 0.0
    memory_cycles: float = 0.0
    num_tiles: int = 0
    transferred_bytes: float = 0.0  # what the DRAM channels moved during its span


@dataclass
class _Chip:
    """Mutable state of one simulation."""

    machine: Machine
    trace: Trace
    memory: MemorySystem
    env: simpy.Environment
    dram_latency_cycles: float
    # a DRAM write's path from the core to the controller, which holds a slot of its window
    dram_write_cycles: float
    busy: list[float] = field(default_factory=list)
    tallies: list[_KernelTally] = field(default_factory=list)
    timeline: Timeline | None = None
    on_kernel: KernelProgress | None = None


def simulate(
    schedule: Schedule,
    machine: Machine,
    options: SimOptions | None = None,
    *,
    timeline: Timeline | None = None,
    on_kernel: KernelProgress | None = None,
) -> RunResult:
    """Time one training iteration of `schedule` on `machine` at the options' fidelity.

    A `timeline` (fast and line fidelity) receives every tile's span on its core, and
    per kernel its span, the bytes each DRAM channel moved and the LLC's occupancy. `on_kernel` is
    called after each kernel with (kernels done, kernels in all): a progress report.

    Raises:
        ConfigError: options that cannot simulate this machine.
        InfeasibleError: line fidelity would take too long (over an hour; `options.allow_slow`
            overrides).
        SimulationError: the simulation did not finish every kernel (a bnsim bug).
    """
    options = options or SimOptions()
    _check_scale(machine)
    with frozen_heap():
        if options.fidelity == "analytic":
            return simulate_analytic(schedule, machine, options)
        return _simulate_tiles(schedule, machine, options, timeline, on_kernel)


# the most cores and DRAM channels a simulation keeps state for (per-core caches and lists,
# per-channel queues): far beyond any real chip, far below what exhausts this computer's memory
MAX_CORES = 65_536
MAX_CHANNELS = 65_536


def _check_scale(machine: Machine) -> None:
    """Raise InfeasibleError for a machine too large to hold in memory while simulating it."""
    for what, count, limit in (
        ("cores", machine.cores.count, MAX_CORES),
        ("DRAM channels", machine.dram.channels, MAX_CHANNELS),
    ):
        if count > limit:
            raise InfeasibleError(
                f"{machine.name} has {count:,} {what}; bnsim simulates at most {limit:,}"
            )


def _simulate_tiles(
    schedule: Schedule,
    machine: Machine,
    options: SimOptions,
    timeline: Timeline | None,
    on_kernel: KernelProgress | None,
) -> RunResult:
    """Fast or line fidelity: the discrete-event run of every tile."""
    check_schedule(schedule)
    trace = Trace(schedule, machine, options)
    caches: CacheModel = "line" if options.fidelity == "line" else "range"
    memory = memory_system(machine, caches)
    if caches == "line" and not options.allow_slow:
        _refuse_slow_line_mode(trace)
    env = simpy.Environment()
    chip = _Chip(
        machine=machine,
        trace=trace,
        memory=memory,
        env=env,
        dram_latency_cycles=dram_read_cycles(machine),
        dram_write_cycles=dram_write_cycles(machine),
        busy=[0.0] * machine.cores.count,
        tallies=[_KernelTally() for _ in schedule.kernels],
        timeline=timeline,
        on_kernel=on_kernel,
    )
    done = env.process(_run_iteration(chip))
    env.run()
    if not done.triggered:
        raise SimulationError("the simulation stopped before the last kernel finished")
    return _result(chip, options)


def _refuse_slow_line_mode(trace: Trace) -> None:
    """Raise InfeasibleError if line fidelity would take longer than its limit (an hour)."""
    line = trace.machine.llc.block_bytes
    accesses = tensor_accesses(trace, attributed=False)
    lines = sum(access.size_bytes for access in accesses) // line
    seconds = lines / LINE_FIDELITY_LINES_PER_SECOND
    if seconds <= LINE_FIDELITY_LIMIT_SECONDS:
        return
    network = trace.schedule.network
    raise InfeasibleError(
        f"line fidelity for {network.name} at batch {network.batch} would take about "
        f"{units.format_duration(seconds)} ({lines:.2g} lines of tensor accesses); use --fidelity "
        "fast, shrink the point (--batch, --image), or pass --force"
    )


def _run_iteration(chip: _Chip) -> ProcessGenerator:
    env = chip.env
    for index, kernel in enumerate(chip.trace.schedule.kernels):
        tally = chip.tallies[index]
        tally.start = round(env.now)
        tiles_start = env.now
        channels_before = chip.memory.channel_transferred(env.now)
        busy_before = chip.memory.channel_busy_until(env.now) if chip.timeline is not None else []
        boxes, chunks = chip.trace.boxes(index)
        dynamic = chip.trace.work(index).dynamic
        tiles_done = _run_boxes(chip, boxes, chunks, tally, dynamic)
        yield env.timeout(tiles_done - env.now)
        reduction = reduction_cycles(chip.trace, chip.memory, index, chip.env.now)
        if reduction:
            yield env.timeout(reduction)
        yield env.timeout(chip.machine.compute.kernel_overhead_cycles)
        tally.end = round(env.now)
        moved = [
            after - before
            for after, before in zip(
                chip.memory.channel_transferred(env.now), channels_before, strict=True
            )
        ]
        tally.transferred_bytes = sum(moved)
        if chip.timeline is not None:
            _record_kernel(chip, kernel, tiles_start, moved, busy_before)
        if chip.on_kernel is not None:
            chip.on_kernel(index + 1, len(chip.tallies))
    # the final write-backs count as traffic; in steady state they overlap the next iteration
    chip.memory.flush(env.now)


def _record_kernel(
    chip: _Chip,
    kernel: Kernel,
    start: float,
    moved: list[float],
    busy_before: list[float],
) -> None:
    assert chip.timeline is not None
    now = chip.env.now
    busy = tuple(
        after - before
        for after, before in zip(chip.memory.channel_busy_until(now), busy_before, strict=True)
    )
    chip.timeline.kernel(
        kernel.name,
        kernel.phase.value,
        start,
        now,
        tuple(moved),
        chip.memory.llc_used_bytes(),
        busy,
    )


def _run_boxes(
    chip: _Chip, boxes: list[BoxWork], chunks: list[range], tally: _KernelTally, dynamic: bool
) -> float:
    """Run a kernel's boxes on the cores from now; return the cycle the last core finishes.

    Every core runs its chunk of boxes in order, each box in its steps; a step issues the next
    equal share of each of the box's streams. The core that became ready first runs its next step
    first (ties: the one that became ready earlier in event order), so the shared LLC and the DRAM
    channels see the steps' accesses in time order: exactly the order of one SimPy process per
    core, each yielding a timeout per step, without the cost of those events (tested equal). In a
    `dynamic` split (a GPU) the boxes are one queue in launch order, and a core that becomes free
    takes the next.
    """
    machine = chip.machine
    line = machine.llc.block_bytes
    # per byte that hits the private cache, hits the LLC, or is read from DRAM: a private hit is
    # one of the core's own misses in flight; beyond the private cache a stream prefetcher keeps
    # more (bnsim.sim.mlp)
    private_cycles = machine.private.latency_cycles / line / machine.cores.max_outstanding_misses
    window = core_window(machine)
    llc_cycles = machine.llc.latency_cycles / line / window
    dram_cycles = chip.dram_latency_cycles / line / window
    rates = (private_cycles, llc_cycles, dram_cycles)
    tally.num_tiles += sum(box.steps for box in boxes)
    spans: list[tuple[int, float, float]] | None = [] if chip.timeline is not None else None
    finished, flops, compute_cycles, memory_total = chip.memory.run_kernel(
        boxes,
        chunks,
        chip.env.now,
        *rates,
        chip.busy,
        line,
        spans,
        dynamic,
        chip.dram_write_cycles / line / window,
    )
    tally.flops += flops
    tally.compute_cycles += compute_cycles
    tally.memory_cycles += memory_total
    if chip.timeline is not None and spans:
        for core, begin, end in spans:
            chip.timeline.tile(core, begin, end)
    return float(finished)


def _result(chip: _Chip, options: SimOptions) -> RunResult:
    trace, memory = chip.trace, chip.memory
    schedule = trace.schedule
    network = schedule.network
    reads, writes = memory.source_bytes()
    read_by_kernel = [0] * len(schedule.kernels)
    write_by_kernel = [0] * len(schedule.kernels)
    rows = []
    for ident, source in enumerate(trace.sources):
        read, write = reads.get(ident, 0), writes.get(ident, 0)
        if not read and not write:
            continue
        kernel = schedule.kernels[source.kernel]
        op = kernel.ops[source.op]
        read_by_kernel[source.kernel] += read
        write_by_kernel[source.kernel] += write
        rows.append(
            TrafficRow(
                kernel=source.kernel,
                op=op.kind.value,
                layer=op.layer,
                layer_kind=network.category(op.layer),
                phase=kernel.phase.value,
                tensor=source.tensor,
                tensor_role=schedule.tensor(source.tensor).role.value,
                dram_read_bytes=read,
                dram_write_bytes=write,
            )
        )
    kernels = tuple(
        KernelResult(
            name=kernel.name,
            phase=kernel.phase.value,
            ops=tuple(op.kind.value for op in kernel.ops),
            layers=kernel.layers(),
            layer_kind=network.category(kernel.main_op().layer),
            start_cycle=tally.start,
            end_cycle=tally.end,
            flops=tally.flops,
            compute_cycles=round(tally.compute_cycles),
            memory_cycles=round(tally.memory_cycles),
            dram_read_bytes=read_by_kernel[index],
            dram_write_bytes=write_by_kernel[index],
            dram_transferred_bytes=round(tally.transferred_bytes),
            num_tiles=tally.num_tiles,
        )
        for index, (kernel, tally) in enumerate(zip(schedule.kernels, chip.tallies, strict=True))
    )
    work = [
        [
            OpWork(op.kind.value, op.layer, network.category(op.layer), cycles)
            for op, cycles in zip(kernel.ops, trace.op_compute_cycles(index), strict=True)
        ]
        for index, kernel in enumerate(schedule.kernels)
    ]
    cycles = round(chip.env.now)
    line = chip.machine.llc.block_bytes
    stats = memory.cache_stats()
    return RunResult(
        scheme=schedule.scheme,
        fidelity=options.fidelity,
        cycles=cycles,
        seconds=cycles / chip.machine.cores.clock_hz,
        flops=sum(kernel.flops for kernel in kernels),
        dram_read_bytes=sum(reads.values()),
        dram_write_bytes=sum(writes.values()),
        kernels=kernels,
        traffic=tuple(rows),
        op_times=op_times(kernels, work, rows),
        caches=tuple((name, _counters(stats[name], line)) for name in ("llc", "private")),
        core_busy_cycles=tuple(round(busy) for busy in chip.busy),
        channel_bytes=tuple(round(amount) for amount in memory.channel_bytes()),
        num_events=sum(tally.num_tiles for tally in chip.tallies) + 3 * len(schedule.kernels),
        dram_channels=channel_traffic(chip.machine, memory.channel_statistics()),
    )


def _counters(stats: CacheBytes, line: int) -> CacheCounters:
    return CacheCounters(
        accesses=(stats.read_bytes + stats.write_bytes) // line,
        hits=stats.hit_bytes // line,
        misses=stats.miss_bytes // line,
        writebacks=stats.writeback_bytes // line,
    )
