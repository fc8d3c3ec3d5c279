"""Analytic fidelity: DRAM traffic from tensor-level LRU stack distances, time from a roofline.

The schedule becomes a sequence of whole-tensor accesses: kernel by kernel, op by op, the tensors an
op reads (except those an earlier op of the same kernel produced) and then those it writes, the same
accesses the fast and line modes make, without tiles. An access's LRU stack distance is its own
bytes plus the bytes of the distinct tensors touched since the tensor's previous access (Mattson et
al., 1970), computed for all accesses at once by bnsim.sim.stackmodel; an access hits in an LLC of C
bytes iff its distance is at most C, so one pass answers every cache size (`traffic_by_capacity`);
an output written in place over its input (`Tensor.storage`) is the same memory as that input. On
whole-tensor streams this equals a fully associative line LRU cache exactly (tests check it). What
the model needs of a schedule whatever the machine (the accesses and ops as columns, each tensor's
chain of accesses) is planned once per schedule and kept while the schedule lives.

What it leaves out, and the fast and line modes keep: reuse inside a kernel (a conv re-reading its
input per block of output channels is one access here), private caches, associativity, halos, load
imbalance, DRAM queueing, and the serial reductions of fused kernels. A kernel takes max(compute,
DRAM) cycles plus its fixed overhead: compute is the fast mode's per-op cycles spread evenly over
the cores; DRAM is the bytes it reads and the bytes it writes that reach DRAM, at the sustained
bandwidth or at the rate the cores' windows let lines through (Little's law: a read holds a slot for
the DRAM latency, a write for its path to the controller), whichever is slower.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bnsim.config.machine import Machine
from bnsim.result import CacheCounters, KernelResult, RunResult, TrafficRow, from_columns
from bnsim.schedule import (
    Schedule,
    check_schedule,
)
from bnsim.sim import passes, stackmodel
from bnsim.sim.analyticplan import Plan, schedule_stream, take
from bnsim.sim.attribution import OpWork, op_times
from bnsim.sim.dramrate import WRITE_SHARES, channel_rates
from bnsim.sim.mlp import core_window, dram_read_cycles, dram_write_cycles
from bnsim.trace import SimOptions, Trace

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Array = NDArray[Any]

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
    stream, plan = schedule_stream(trace)
    names = plan.names
    sources = [-1] * len(stream.size)
    if attributed:
        op_kernel, op_index = plan.op_kernel.tolist(), plan.op_index.tolist()
        keys = [
            (op_kernel[op], op_index[op], names[tensor])
            for op, tensor in zip(plan.source_op.tolist(), plan.source_tensor.tolist(), strict=True)
        ]
        # the trace interns its ids in access order, as if the accesses were made one by one
        sources = [trace.source(*keys[ident]) for ident in stream.source.tolist()]
    return [
        TensorAccess(kernel, source, names[tensor], size, write)
        for kernel, source, tensor, size, write in zip(
            stream.kernel.tolist(),
            sources,
            stream.tensor.tolist(),
            stream.size.tolist(),
            stream.write.tolist(),
            strict=True,
        )
    ]


def stack_distances(accesses: Sequence[TensorAccess]) -> list[float]:
    """Per access, its bytes plus those of the distinct tensors touched since its tensor's last
    access (COLD for a first access)."""
    stream = _stream_of(accesses)
    chains = stackmodel.chains(stream.tensor)
    distances = stackmodel.distances(stream.size, chains).tolist()
    return [
        COLD if previous < 0 else distance
        for previous, distance in zip(chains.previous.tolist(), distances, strict=True)
    ]


def llc_traffic(
    accesses: Sequence[TensorAccess],
    distances: Sequence[float],
    llc_size_bytes: int,
    *,
    nontemporal: bool = False,
    num_kernels: int = 0,
) -> Traffic:
    """DRAM traffic through a fully associative LRU write-back LLC of `llc_size_bytes`.

    A miss reads the tensor (a write miss too: write-allocate), unless stores are non-temporal, in
    which case a write goes straight to DRAM and leaves no copy. A written tensor is written back
    once per stay in the cache: when its next access finds it evicted, or at the end.
    """
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    stream = _stream_of(accesses)
    if nontemporal:
        stream = stream._replace(kind=np.where(stream.write, stackmodel.STREAM, 0))
    near = np.array([distance <= llc_size_bytes for distance in distances], dtype=bool)
    if len(near) != len(accesses):
        raise ValueError(f"{len(distances)} distances for {len(accesses)} accesses")
    chains = stackmodel.chains(stream.tensor)
    flows = stackmodel.flows(stream, chains, near, num_kernels)
    original = np.array([access.source for access in accesses], dtype=np.int64)

    def by_source(events: Array, totals: Array) -> dict[int, int]:
        dense = np.unique(stream.source[events]).tolist()
        ids = np.unique(original[events]).tolist()  # the same order: ids map densely by rank
        return dict(zip(ids, totals[dense].tolist(), strict=True))

    kernel_bytes = (flows.read_by_kernel + flows.write_by_kernel).tolist() if num_kernels else []
    return Traffic(
        read_bytes=by_source(flows.filled, flows.read_by_source),
        write_bytes=by_source(flows.written, flows.write_by_source),
        kernel_bytes=kernel_bytes,
        access_bytes=flows.access_bytes,
        hit_bytes=flows.hit_bytes,
    )


def traffic_by_capacity(
    schedule: Schedule, machine: Machine, capacities: Iterable[int]
) -> dict[int, tuple[int, int]]:
    """DRAM (read, write) bytes of one iteration for each LLC capacity, from one stack pass."""
    trace = Trace(schedule, machine, SimOptions(fidelity="analytic"))
    stream, plan = schedule_stream(trace)
    distances = stackmodel.distances(stream.size, plan.chains)
    reused = plan.chains.previous >= 0
    curve = {}
    for capacity in capacities:
        near = reused & stackmodel.within(distances, capacity)
        flows = stackmodel.flows(stream, plan.chains, near, 0)
        flows = passes.with_rereads(trace, plan.columns(), stream, flows, capacity)
        curve[capacity] = (int(flows.read_by_source.sum()), int(flows.write_by_source.sum()))
    return curve


def simulate_analytic(schedule: Schedule, machine: Machine, options: SimOptions) -> RunResult:
    """The closed-form result of one training iteration of `schedule` on `machine`."""
    check_schedule(schedule)
    return _analytic_result(Trace(schedule, machine, options))


def _analytic_result(trace: Trace) -> RunResult:
    """simulate_analytic of a checked schedule, given its trace."""
    schedule, machine = trace.schedule, trace.machine
    stream, plan = schedule_stream(trace)
    chains = plan.chains
    near = (chains.previous >= 0) & stackmodel.within(
        stackmodel.distances(stream.size, chains), machine.llc.size_bytes
    )
    flows = stackmodel.flows(stream, chains, near, len(schedule.kernels))
    flows = passes.with_rereads(trace, plan.columns(), stream, flows, machine.llc.size_bytes)
    rows = _rows(plan, flows)
    kernels, work, busy = _kernel_results(trace, plan, flows)
    now = kernels[-1].end_cycle if kernels else 0
    dram = machine.dram
    line = machine.llc.block_bytes
    cores = machine.cores.count
    read_bytes, write_bytes = int(flows.read_by_source.sum()), int(flows.write_by_source.sum())
    misses = flows.access_bytes - flows.hit_bytes
    return RunResult(
        scheme=schedule.scheme,
        fidelity="analytic",
        cycles=now,
        seconds=now / machine.cores.clock_hz,
        flops=sum(kernel.flops for kernel in kernels),
        dram_read_bytes=read_bytes,
        dram_write_bytes=write_bytes,
        kernels=tuple(kernels),
        traffic=tuple(rows),
        op_times=op_times(kernels, work, rows),
        caches=(
            (
                "llc",
                CacheCounters(
                    accesses=flows.access_bytes // line,
                    hits=flows.hit_bytes // line,
                    misses=misses // line,
                    writebacks=write_bytes // line,
                ),
            ),
        ),
        core_busy_cycles=(round(busy),) * cores,
        channel_bytes=(round((read_bytes + write_bytes) / dram.channels),) * dram.channels,
        num_events=0,
    )


def _stream_of(accesses: Sequence[TensorAccess]) -> stackmodel.Stream:
    """The columns of a list of accesses (source ids made dense, in the order of the ids)."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    tensor_ids: dict[str, int] = {}
    tensors = [tensor_ids.setdefault(access.tensor, len(tensor_ids)) for access in accesses]
    original = sorted({access.source for access in accesses})
    dense = {source: rank for rank, source in enumerate(original)}
    sizes = [access.size_bytes for access in accesses]
    return stackmodel.Stream(
        kernel=np.array([access.kernel for access in accesses], dtype=np.int64),
        source=np.array([dense[access.source] for access in accesses], dtype=np.int64),
        tensor=np.array(tensors, dtype=np.int64),
        # sums could leave int64: then exact Python ints
        size=np.array(sizes, dtype=np.int64 if sum(sizes) < stackmodel.INT64_BYTES else object),
        write=np.array([access.write for access in accesses], dtype=bool),
        num_sources=len(original),
    )


def _rows(plan: Plan, flows: stackmodel.Flows) -> list[TrafficRow]:
    """One row per source with DRAM traffic, in the order of the source ids."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    carrying = np.flatnonzero((flows.read_by_source != 0) | (flows.write_by_source != 0))
    op = plan.source_op[carrying]
    tensor = plan.source_tensor[carrying]
    kernel = plan.op_kernel[op]
    return from_columns(
        TrafficRow,
        {
            "kernel": kernel.tolist(),
            "op": take(plan.kinds, op),
            "layer": take(plan.layers, op),
            "layer_kind": take(plan.categories, op),
            "phase": take(plan.phases, kernel),
            "tensor": take(plan.names, tensor),
            "tensor_role": take(plan.roles, tensor),
            "dram_read_bytes": flows.read_by_source[carrying].tolist(),
            "dram_write_bytes": flows.write_by_source[carrying].tolist(),
        },
    )


def _kernel_results(
    trace: Trace, plan: Plan, flows: stackmodel.Flows
) -> tuple[list[KernelResult], list[list[OpWork]], float]:
    """Each kernel's result, back to back from cycle 0, its ops' work, and the busy cycles of
    each core.

    A kernel's compute is the core cycles of all its ops' work as the fast mode charges it (halos
    aside), spread evenly over the cores.
    """
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    machine = trace.machine
    cycles = list(map(trace.compute_cycles, plan.ops, plan.shares, plan.fused_main))
    compute = take(cycles, plan.first_op)
    for index, start, end in plan.fused:
        compute[index] = sum(cycles[start:end])
    cores = machine.cores.count
    reads, writes = flows.read_by_kernel, flows.write_by_kernel
    moved = (reads + writes).astype(np.float64)
    # every channel at the rate it sustains for the kernel's mix of reads and writes
    share = np.divide(writes, moved, out=np.zeros_like(moved), where=moved > 0)
    rates = np.interp(share, WRITE_SHARES, channel_rates(machine))
    bytes_per_cycle = machine.dram.channels * rates / machine.cores.clock_hz
    # and no faster than the cores' windows let lines through (Little's law, as the fast mode's)
    in_flight = machine.llc.block_bytes * core_window(machine) * cores
    window_cycles = reads * dram_read_cycles(machine) + writes * dram_write_cycles(machine)
    memory = np.maximum(moved / bytes_per_cycle, window_cycles / in_flight)
    compute_cycles = np.array(compute, dtype=np.float64)
    spread = compute_cycles / cores
    duration = np.maximum(np.maximum(spread, memory), 1.0)
    # rint rounds half to even, as round() does
    steps = np.rint(duration + machine.compute.kernel_overhead_cycles).astype(np.int64)
    ends = np.cumsum(steps)
    fields = plan.kernel_fields
    results = from_columns(
        KernelResult,
        {
            "name": fields["name"],
            "phase": fields["phase"],
            "ops": fields["ops"],
            "layers": fields["layers"],
            "layer_kind": fields["layer_kind"],
            "start_cycle": (ends - steps).tolist(),
            "end_cycle": ends.tolist(),
            "flops": fields["flops"],
            "compute_cycles": np.rint(compute_cycles).astype(np.int64).tolist(),
            "memory_cycles": np.rint(memory * cores).astype(np.int64).tolist(),
            "dram_read_bytes": reads.tolist(),
            "dram_write_bytes": writes.tolist(),
            # the model times a kernel by the bytes charged to it: those are what its span moves
            "dram_transferred_bytes": (reads + writes).tolist(),
            "num_tiles": [0] * len(steps),
        },
    )
    work: list[list[OpWork]] = [[] for _ in results]
    for kernel, kind, layer, category, op_cycles in zip(
        plan.op_kernel.tolist(), plan.kinds, plan.layers, plan.categories, cycles, strict=True
    ):
        work[kernel].append(OpWork(kind, layer, category, op_cycles))
    return results, work, sum(spread.tolist())
