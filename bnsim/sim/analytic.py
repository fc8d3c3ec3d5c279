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
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from bnsim.config.machine import Machine
from bnsim.result import CacheCounters, KernelResult, RunResult, TrafficRow, from_columns
from bnsim.schedule import (
    Op,
    OpKind,
    Phase,
    Schedule,
    TensorRole,
    check_schedule,
)
from bnsim.sim import passes, stackmodel
from bnsim.sim.attribution import OpWork, op_times
from bnsim.sim.dramrate import WRITE_SHARES, channel_rates
from bnsim.sim.mlp import core_window, dram_read_cycles, dram_write_cycles
from bnsim.trace import SimOptions, Trace
from bnsim.trace.dataflow import store_kinds

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Array = NDArray[Any]

COLD = math.inf  # stack distance of a first access
# the enums' plain strings, looked up once: an Enum's `.value` is a Python-level property
_KIND_NAMES = {kind: kind.value for kind in OpKind}
_PHASE_NAMES = {phase: phase.value for phase in Phase}
_ROLE_NAMES = {role: role.value for role in TensorRole}
_STATISTICS = OpKind.BN_STATS  # looked up once: a member lookup on an Enum class is slow
_KIND_OF, _LAYER_OF, _FLOPS_OF = attrgetter("kind"), attrgetter("layer"), attrgetter("flops")


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
    stream, plan = _schedule_stream(trace)
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
    stream, plan = _schedule_stream(trace)
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
    stream, plan = _schedule_stream(trace)
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


class _Plan(NamedTuple):
    """What the model needs of a schedule whatever the machine: its tensor accesses and its ops
    as columns, what their ids stand for, and the fields of its kernels' results that only the
    schedule decides. Accesses are numbered in execution order (an op's reads, then its writes;
    tensors in memory only), ops kernel by kernel, tensors in order of creation (as Trace lays
    them out), sources in order of first use (as Trace.source interns them)."""

    tensor: Array  # by access: its tensor
    write: Array  # by access
    kernel: Array  # by access: its kernel
    source: Array  # by access: its source, an (op, tensor) pair
    sampled: list[tuple[int, float]]  # (access, share): reads of a sample of their tensor
    chains: stackmodel.Chains  # each access's neighbours among the accesses of its memory
    source_op: Array  # by source
    source_tensor: Array  # by source
    names: list[str]  # by tensor
    roles: list[str]  # by tensor
    op_kernel: Array  # by op
    op_index: Array  # by op: its index in its kernel
    ops: list[Op]
    shares: list[float]  # by op: the share of its input it reads (below 1: sampled statistics)
    fused_main: list[bool]  # by op: the main op of a fused kernel (see Trace.compute_cycles)
    kinds: list[str]  # by op
    layers: list[str]  # by op
    categories: list[str]  # by op: its layer's breakdown category
    first_op: Array  # by kernel
    fused: list[tuple[int, int, int]]  # (kernel, first op, end op) of kernels of several ops
    phases: list[str]  # by kernel
    kernel_fields: dict[str, list[Any]]  # by kernel: the KernelResult fields named

    def columns(self) -> passes.SourceColumns:
        """The plan's source columns (bnsim.sim.passes)."""
        return passes.SourceColumns(self.source, self.source_op, self.source_tensor, self.names)


# a schedule never changes, so its plan is made once: simulating one schedule on many machines (a
# sweep, a notebook) pays only for what the machine decides
_PLANS: weakref.WeakKeyDictionary[Schedule, _Plan] = weakref.WeakKeyDictionary()


def _schedule_stream(trace: Trace) -> tuple[stackmodel.Stream, _Plan]:
    """The schedule's tensor accesses as columns on the trace's machine, and its plan."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    plan = _PLANS.get(trace.schedule)
    if plan is None:
        plan = _PLANS[trace.schedule] = _plan(trace)
    stored = trace.stored_sizes()
    sizes = np.fromiter(map(stored.__getitem__, plan.names), np.int64, len(plan.names))
    size = sizes[plan.tensor]
    line = trace.machine.llc.block_bytes
    for access, share in plan.sampled:  # only the sampled elements are read, in whole lines
        whole = int(size[access])
        size[access] = min(whole, -(-math.ceil(whole * share) // line) * line)
    if len(size) and int(size.max()) * len(size) >= stackmodel.INT64_BYTES:
        size = size.astype(object)  # sums could leave int64: exact Python ints
    stream = stackmodel.Stream(
        kernel=plan.kernel,
        source=plan.source,
        tensor=plan.tensor,
        size=size,
        write=plan.write,
        num_sources=len(plan.source_op),
        kind=np.where(plan.write, _store_kinds(trace, plan)[plan.source_op[plan.source]], 0),
    )
    return stream, plan


# how each op stores, by machine setting (library, nontemporal_stores): made once per schedule
_STORE_KINDS: weakref.WeakKeyDictionary[Schedule, dict[tuple[str, str, str], Array]] = (
    weakref.WeakKeyDictionary()
)


def _store_kinds(trace: Trace, plan: _Plan) -> Array:
    """Per op of the schedule, in order, its stores' kind (bnsim.trace.dataflow.store_kind)."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    compute = trace.machine.compute
    known = _STORE_KINDS.setdefault(trace.schedule, {})
    key = (compute.library, compute.nontemporal_stores, compute.layout)
    kinds = known.get(key)
    if kinds is None:
        kinds = known[key] = np.array(store_kinds(trace.schedule, trace.machine), dtype=np.int8)
    return kinds


def _plan(trace: Trace) -> _Plan:
    """The plan of the trace's schedule (the trace is asked only what the schedule decides: the
    share of its input a sampled op reads)."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    schedule = trace.schedule
    kernels = schedule.kernels
    network = schedule.network
    listing = _listing(schedule, trace)
    names = [name for name, tensor in schedule.tensors.items() if not tensor.transient]
    tensor_ids = dict.fromkeys(schedule.tensors, -1)  # transient tensors: never in memory
    tensor_ids.update(zip(names, range(len(names)), strict=True))
    tensor = np.fromiter(map(tensor_ids.__getitem__, listing.names), np.int64, len(listing.names))
    num_ops = len(listing.shares)
    # by op: its reads, then its writes
    op = np.repeat(np.repeat(np.arange(num_ops), 2), listing.counts)
    write = np.repeat(np.tile(np.array([False, True]), num_ops), listing.counts)
    in_memory = tensor >= 0
    kept = np.cumsum(in_memory) - 1  # each listed name's access number, if it is in memory
    sampled = [(int(kept[at]), share) for at, share in listing.sampled if in_memory[at]]
    tensor, op, write = tensor[in_memory], op[in_memory], write[in_memory]
    source, firsts = _first_seen(op * len(names) + tensor)
    ops_per_kernel = np.array(listing.ops, dtype=np.int64)
    kernel_of_op = np.repeat(np.arange(len(ops_per_kernel)), ops_per_kernel)
    first_op = np.cumsum(ops_per_kernel) - ops_per_kernel

    ops = [each for kernel in kernels for each in kernel.ops]
    layers = list(map(_LAYER_OF, ops))
    category = {layer: network.category(layer) for layer in dict.fromkeys(layers)}
    kinds = list(map(_KIND_NAMES.__getitem__, map(_KIND_OF, ops)))
    categories = list(map(category.__getitem__, layers))
    fused = [
        (index, start, start + len(kernels[index].ops))
        for index, start in zip(
            np.flatnonzero(ops_per_kernel > 1).tolist(),
            first_op[ops_per_kernel > 1].tolist(),
            strict=True,
        )
    ]
    fused_main = [False] * len(ops)
    # most kernels have one op, whose values are the kernel's; fused kernels are combined below
    work = _take(list(map(_FLOPS_OF, ops)), first_op)
    kernel_kinds: list[tuple[str, ...]] = list(zip(_take(kinds, first_op)))
    kernel_layers: list[tuple[str, ...]] = list(zip(_take(layers, first_op)))
    kernel_categories = _take(categories, first_op)
    for index, start, end in fused:
        kernel = kernels[index]
        main = kernel.main_op()
        fused_main[start + kernel.ops.index(main)] = True
        work[index] = kernel.flops()
        kernel_kinds[index] = tuple(kinds[start:end])
        kernel_layers[index] = kernel.layers()
        kernel_categories[index] = network.category(main.layer)
    phases = [_PHASE_NAMES[kernel.phase] for kernel in kernels]
    tensors = schedule.tensors
    return _Plan(
        tensor=tensor,
        write=write,
        kernel=kernel_of_op[op],
        source=source,
        sampled=sampled,
        chains=stackmodel.chains(_memory_of(schedule, names)[tensor]),
        source_op=op[firsts],
        source_tensor=tensor[firsts],
        names=names,
        roles=[_ROLE_NAMES[tensors[name].role] for name in names],
        op_kernel=kernel_of_op,
        op_index=np.arange(num_ops) - first_op[kernel_of_op],
        ops=ops,
        shares=listing.shares,
        fused_main=fused_main,
        kinds=kinds,
        layers=layers,
        categories=categories,
        first_op=first_op,
        fused=fused,
        phases=phases,
        kernel_fields={
            "name": [kernel.name for kernel in kernels],
            "phase": phases,
            "ops": kernel_kinds,
            "layers": kernel_layers,
            "layer_kind": kernel_categories,
            "flops": work,
        },
    )


def _memory_of(schedule: Schedule, names: list[str]) -> Array:
    """By tensor id, the id of the tensor whose memory it lies in: its own, or for an output
    written in place over an input (`storage`), that input's (followed to the first)."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    ids = {name: number for number, name in enumerate(names)}
    memory = np.arange(len(names), dtype=np.int64)
    for number, name in enumerate(names):  # in order of creation: an input's id is final first
        storage = schedule.tensors[name].storage
        if storage:
            memory[number] = memory[ids[storage]]
    return memory


def _first_seen(keys: Array) -> tuple[Array, Array]:
    """Ids of `keys` numbered in the order of their first occurrence (as Trace.source interns
    sources), and the position of each id's first occurrence."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    distinct, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    by_first = np.argsort(first)
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[by_first] = np.arange(len(distinct))
    return rank[inverse.reshape(-1)], first[by_first]


class _Listing(NamedTuple):
    """The names the ops touch, op by op, kernel by kernel: the reads (but those produced by an
    earlier op of the kernel), then the writes."""

    names: list[str]
    counts: list[int]  # by op: reads, writes
    ops: list[int]  # by kernel: how many ops it has
    shares: list[float]  # by op: the share of its input a sampled op reads
    sampled: list[tuple[int, float]]  # (position in `names`, share) of sampled reads


def _listing(schedule: Schedule, trace: Trace) -> _Listing:
    """What the ops of `schedule` touch (see _Listing)."""
    listing = _Listing([], [], [], [], [])
    names, counts, shares = listing.names, listing.counts, listing.shares
    for kernel in schedule.kernels:
        ops = kernel.ops
        listing.ops.append(len(ops))
        produced: set[str] = set()
        for op in ops:
            reads, writes = op.reads, op.writes
            if produced:
                reads = tuple([name for name in reads if name not in produced])
            # only statistics ops sample (sampled_share is 1 for every other op)
            share = trace.sampled_share(op) if op.kind is _STATISTICS else 1.0
            if share < 1 and reads and reads[0] == op.reads[0]:
                listing.sampled.append((len(names), share))
            names += reads
            names += writes
            counts.append(len(reads))
            counts.append(len(writes))
            shares.append(share)
            if len(ops) > 1:
                produced.update(writes)
    return listing


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


def _take(values: Sequence[Any], index: Array) -> list[Any]:
    """values[i] for each i in `index`."""
    return list(map(values.__getitem__, index.tolist()))


def _rows(plan: _Plan, flows: stackmodel.Flows) -> list[TrafficRow]:
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
            "op": _take(plan.kinds, op),
            "layer": _take(plan.layers, op),
            "layer_kind": _take(plan.categories, op),
            "phase": _take(plan.phases, kernel),
            "tensor": _take(plan.names, tensor),
            "tensor_role": _take(plan.roles, tensor),
            "dram_read_bytes": flows.read_by_source[carrying].tolist(),
            "dram_write_bytes": flows.write_by_source[carrying].tolist(),
        },
    )


def _kernel_results(
    trace: Trace, plan: _Plan, flows: stackmodel.Flows
) -> tuple[list[KernelResult], list[list[OpWork]], float]:
    """Each kernel's result, back to back from cycle 0, its ops' work, and the busy cycles of
    each core.

    A kernel's compute is the core cycles of all its ops' work as the fast mode charges it (halos
    aside), spread evenly over the cores.
    """
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    machine = trace.machine
    cycles = list(map(trace.compute_cycles, plan.ops, plan.shares, plan.fused_main))
    compute = _take(cycles, plan.first_op)
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
