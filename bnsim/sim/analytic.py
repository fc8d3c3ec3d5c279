"""Analytic fidelity: DRAM traffic from tensor-level LRU stack distances, time from a roofline.

The schedule becomes a sequence of whole-tensor accesses: kernel by kernel, op by op, the tensors an
op reads (except those an earlier op of the same kernel produced) and then those it writes, the
same accesses the fast and line modes make, without tiles. An access's LRU stack distance is its own
bytes plus the bytes of the distinct tensors touched since the tensor's previous access (Mattson et
al., 1970), computed for all accesses in one pass with a Fenwick tree; an access hits in an LLC of C
bytes iff its distance is at most C, so one pass answers every cache size (`traffic_by_capacity`).
On whole-tensor streams this equals a fully associative line LRU cache exactly (tests check it).

What it leaves out, and the fast and line modes keep: reuse inside a kernel (a conv re-reading its
input per block of output channels is one access here), private caches, associativity, halos, load
imbalance, DRAM latency and queueing, and the serial reductions of fused kernels. A kernel takes
max(compute, DRAM) cycles plus its fixed overhead: compute is the fast mode's per-op cycles spread
evenly over the cores; DRAM is the bytes it reads and the bytes it writes that reach DRAM, at the
sustained bandwidth. Imports bnsim.trace, bnsim.hw, bnsim.result, bnsim.schedule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bnsim.hw import Machine
from bnsim.result import CacheCounters, KernelResult, RunResult, TrafficRow
from bnsim.schedule import Kernel, Schedule, check_schedule
from bnsim.trace import SimOptions, Trace

COLD = math.inf  # stack distance of a first access


@dataclass(frozen=True, slots=True)
class TensorAccess:
    """One op touching one tensor, as a whole (or its sampled part)."""

    kernel: int
    source: int  # attribution id, as in bnsim.trace
    tensor: str
    size_bytes: int
    write: bool


@dataclass(frozen=True, slots=True)
class Traffic:
    """DRAM bytes of an access sequence through an LLC of one capacity."""

    read_bytes: dict[int, int]  # by source
    write_bytes: dict[int, int]  # by source of the last writer
    kernel_bytes: list[int]  # reads and eventual write-backs, by the kernel that made them
    access_bytes: int
    hit_bytes: int

    def dram_read_bytes(self) -> int:
        """All bytes read from DRAM."""
        return sum(self.read_bytes.values())

    def dram_write_bytes(self) -> int:
        """All bytes written to DRAM."""
        return sum(self.write_bytes.values())


def tensor_accesses(trace: Trace, *, attributed: bool = True) -> list[TensorAccess]:
    """The schedule's tensor accesses in execution order (reads before writes within an op).

    Unattributed accesses have source -1 and leave the trace's source ids alone (for estimates
    made before a simulation, which must not change the ids its results are keyed by).
    """
    schedule = trace.schedule
    tensors = schedule.tensors
    line = trace.machine.llc.block_bytes
    accesses = []
    for index, kernel in enumerate(schedule.kernels):
        produced: set[str] = set()
        for op_index, op in enumerate(kernel.ops):
            share = trace.sampled_share(op)
            for position, name in enumerate(op.reads):
                if tensors[name].transient or name in produced:
                    continue
                size = trace.stored_bytes(name)
                if position == 0 and share < 1:  # only the sampled elements are read
                    size = min(size, -(-math.ceil(size * share) // line) * line)
                source = trace.source(index, op_index, name) if attributed else -1
                accesses.append(TensorAccess(index, source, name, size, False))
            for name in op.writes:
                produced.add(name)
                if tensors[name].transient:
                    continue
                source = trace.source(index, op_index, name) if attributed else -1
                accesses.append(TensorAccess(index, source, name, trace.stored_bytes(name), True))
    return accesses


def stack_distances(accesses: Sequence[TensorAccess]) -> list[float]:
    """Per access, its bytes plus those of the distinct tensors touched since its tensor's last
    access (COLD for a first access)."""
    count = len(accesses)
    # Fenwick tree over positions: each tensor's bytes sit at the position of its last access
    tree = [0] * (count + 1)
    last: dict[str, int] = {}
    distances: list[float] = []
    for position, access in enumerate(accesses):
        previous = last.get(access.tensor)
        if previous is None:
            distances.append(COLD)
        else:
            # the bytes at positions previous+1 .. position-1
            between = 0
            index = position
            while index > 0:
                between += tree[index]
                index -= index & -index
            index = previous + 1
            while index > 0:
                between -= tree[index]
                index -= index & -index
            distances.append(between + access.size_bytes)
            index, amount = previous + 1, -accesses[previous].size_bytes
            while index <= count:
                tree[index] += amount
                index += index & -index
        index, amount = position + 1, access.size_bytes
        while index <= count:
            tree[index] += amount
            index += index & -index
        last[access.tensor] = position
    return distances


def llc_traffic(
    accesses: Sequence[TensorAccess],
    distances: Sequence[float],
    capacity_bytes: int,
    *,
    nontemporal: bool = False,
    num_kernels: int = 0,
) -> Traffic:
    """DRAM traffic through a fully associative LRU write-back LLC of `capacity_bytes`.

    A miss reads the tensor (a write miss too: write-allocate), unless stores are non-temporal, in
    which case a write goes straight to DRAM and leaves no copy. A written tensor is written back
    once per stay in the cache: when its next access finds it evicted, or at the end.
    """
    read: dict[int, int] = {}
    written: dict[int, int] = {}
    kernel_bytes = [0] * num_kernels
    dirty: dict[str, TensorAccess] = {}  # tensor → its last write, while cached and dirty
    streamed: set[str] = set()  # written non-temporally since its last access: not cached
    access_bytes = hit_bytes = 0

    def write_back(write: TensorAccess) -> None:
        written[write.source] = written.get(write.source, 0) + write.size_bytes
        if num_kernels:
            kernel_bytes[write.kernel] += write.size_bytes

    for access, distance in zip(accesses, distances, strict=True):
        access_bytes += access.size_bytes
        hit = distance <= capacity_bytes and access.tensor not in streamed
        streamed.discard(access.tensor)
        if not hit and access.tensor in dirty:
            write_back(dirty.pop(access.tensor))  # evicted (dirty) before this access
        if access.write and nontemporal:
            dirty.pop(access.tensor, None)  # the stream overwrites any cached copy
            write_back(access)
            streamed.add(access.tensor)
            continue
        if hit:
            hit_bytes += access.size_bytes
        else:
            read[access.source] = read.get(access.source, 0) + access.size_bytes
            if num_kernels:
                kernel_bytes[access.kernel] += access.size_bytes
        if access.write:
            dirty[access.tensor] = access
    for write in dirty.values():  # the end of the iteration flushes what is still dirty
        write_back(write)
    return Traffic(
        read_bytes=read,
        write_bytes=written,
        kernel_bytes=kernel_bytes,
        access_bytes=access_bytes,
        hit_bytes=hit_bytes,
    )


def traffic_by_capacity(
    schedule: Schedule, machine: Machine, capacities: Iterable[int]
) -> dict[int, tuple[int, int]]:
    """DRAM (read, write) bytes of one iteration for each LLC capacity, from one stack pass."""
    trace = Trace(schedule, machine, SimOptions(fidelity="analytic"))
    accesses = tensor_accesses(trace)
    distances = stack_distances(accesses)
    nontemporal = machine.compute.nontemporal_stores
    curve = {}
    for capacity in capacities:
        traffic = llc_traffic(accesses, distances, capacity, nontemporal=nontemporal)
        curve[capacity] = (traffic.dram_read_bytes(), traffic.dram_write_bytes())
    return curve


def simulate_analytic(schedule: Schedule, machine: Machine, options: SimOptions) -> RunResult:
    """The closed-form result of one training iteration of `schedule` on `machine`."""
    check_schedule(schedule)
    trace = Trace(schedule, machine, options)
    accesses = tensor_accesses(trace)
    traffic = llc_traffic(
        accesses,
        stack_distances(accesses),
        machine.llc.size_bytes,
        nontemporal=machine.compute.nontemporal_stores,
        num_kernels=len(schedule.kernels),
    )
    dram = machine.dram
    bytes_per_cycle = (
        dram.channels * dram.channel_bandwidth_bytes_per_second * dram.efficiency
    ) / machine.cores.clock_hz
    cores = machine.cores.count
    reads_by_kernel = [0] * len(schedule.kernels)
    writes_by_kernel = [0] * len(schedule.kernels)
    rows = _rows(schedule, trace, traffic, reads_by_kernel, writes_by_kernel)
    kernels = []
    now = 0
    busy = 0.0
    for index, kernel in enumerate(schedule.kernels):
        compute = _compute_cycles(trace, kernel)  # all cores together
        memory = traffic.kernel_bytes[index] / bytes_per_cycle
        duration = max(compute / cores, memory, 1.0)
        end = now + round(duration + machine.compute.kernel_overhead_cycles)
        busy += compute / cores
        kernels.append(
            KernelResult(
                name=kernel.name,
                phase=kernel.phase.value,
                ops=tuple(op.kind.value for op in kernel.ops),
                layers=kernel.layers(),
                layer_kind=schedule.network.category(kernel.main_op().layer),
                start_cycle=now,
                end_cycle=end,
                flops=kernel.flops(),
                compute_cycles=round(compute),
                memory_cycles=round(memory * cores),
                dram_read_bytes=reads_by_kernel[index],
                dram_write_bytes=writes_by_kernel[index],
                num_tiles=0,
            )
        )
        now = end
    line = machine.llc.block_bytes
    dram_bytes = traffic.dram_read_bytes() + traffic.dram_write_bytes()
    misses = traffic.access_bytes - traffic.hit_bytes
    return RunResult(
        scheme=schedule.scheme,
        fidelity="analytic",
        cycles=now,
        seconds=now / machine.cores.clock_hz,
        flops=sum(kernel.flops for kernel in kernels),
        dram_read_bytes=traffic.dram_read_bytes(),
        dram_write_bytes=traffic.dram_write_bytes(),
        kernels=tuple(kernels),
        traffic=tuple(rows),
        caches=(
            (
                "llc",
                CacheCounters(
                    accesses=traffic.access_bytes // line,
                    hits=traffic.hit_bytes // line,
                    misses=misses // line,
                    writebacks=traffic.dram_write_bytes() // line,
                ),
            ),
        ),
        core_busy_cycles=(round(busy),) * cores,
        channel_bytes=(round(dram_bytes / dram.channels),) * dram.channels,
        num_events=0,
    )


def _compute_cycles(trace: Trace, kernel: Kernel) -> float:
    """Core cycles of all the kernel's work, as the fast mode charges it (halos aside)."""
    main = kernel.main_op()
    fused = len(kernel.ops) > 1
    return sum(
        trace.compute_cycles(op, trace.sampled_share(op), fused and op is main) for op in kernel.ops
    )


def _rows(
    schedule: Schedule, trace: Trace, traffic: Traffic, reads: list[int], writes: list[int]
) -> list[TrafficRow]:
    """One row per source with DRAM traffic; adds each source's bytes to its kernel's."""
    network = schedule.network
    categories: dict[str, str] = {}
    rows = []
    for ident, source in enumerate(trace.sources):
        read, write = traffic.read_bytes.get(ident, 0), traffic.write_bytes.get(ident, 0)
        if not read and not write:
            continue
        reads[source.kernel] += read
        writes[source.kernel] += write
        kernel = schedule.kernels[source.kernel]
        op = kernel.ops[source.op]
        category = categories.get(op.layer)
        if category is None:
            category = categories[op.layer] = network.category(op.layer)
        rows.append(
            TrafficRow(
                kernel=source.kernel,
                op=op.kind.value,
                layer=op.layer,
                layer_kind=category,
                phase=kernel.phase.value,
                tensor=source.tensor,
                tensor_role=schedule.tensors[source.tensor].role.value,
                dram_read_bytes=read,
                dram_write_bytes=write,
            )
        )
    return rows
