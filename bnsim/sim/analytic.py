"""Analytic fidelity: DRAM traffic from tensor-level LRU stack distances, time from a roofline.

The schedule becomes a sequence of whole-tensor accesses: kernel by kernel, op by op, the tensors an
op reads (except those an earlier op of the same kernel produced) and then those it writes, the
same accesses the fast and line modes make, without tiles. An access's LRU stack distance is its own
bytes plus the bytes of the distinct tensors touched since the tensor's previous access (Mattson et
al., 1970), computed for all accesses at once with NumPy (prefix sums, and per access the bytes of
the earlier accesses whose tensors are next touched later than its own, one vectorised pass per bit
of the access count); an access hits in an LLC of C bytes iff its distance is at most C, so one
pass answers every cache size (`traffic_by_capacity`). On whole-tensor streams this equals a fully
associative line LRU cache exactly (tests check it).

What it leaves out, and the fast and line modes keep: reuse inside a kernel (a conv re-reading its
input per block of output channels is one access here), private caches, associativity, halos, load
imbalance, DRAM latency and queueing, and the serial reductions of fused kernels. A kernel takes
max(compute, DRAM) cycles plus its fixed overhead: compute is the fast mode's per-op cycles spread
evenly over the cores; DRAM is the bytes it reads and the bytes it writes that reach DRAM, at the
sustained bandwidth. Imports bnsim.trace, bnsim.hw, bnsim.result, bnsim.schedule; numpy on first
use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, NamedTuple

from bnsim.hw import Machine
from bnsim.result import CacheCounters, KernelResult, RunResult, TrafficRow
from bnsim.schedule import Kernel, Op, OpKind, Phase, Schedule, TensorRole, check_schedule
from bnsim.trace import SimOptions, Trace

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Array = NDArray[Any]

COLD = math.inf  # stack distance of a first access
# below this many bytes of accesses in all, every sum fits in int64; above, exact Python ints
_INT64_BYTES = 1 << 62
# the enums' plain strings, looked up once: an Enum's `.value` is a Python-level property
_KIND_NAMES = {kind: kind.value for kind in OpKind}
_PHASE_NAMES = {phase: phase.value for phase in Phase}
_ROLE_NAMES = {role: role.value for role in TensorRole}
_STATISTICS = OpKind.BN_STATS  # looked up once: a member lookup on an Enum class is slow


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
    stream, origins = _schedule_stream(trace)
    names = origins.names
    sources = [-1] * len(stream.size)
    if attributed:
        op_kernel, op_index = origins.op_kernel, origins.op_index
        keys = [
            (op_kernel[op], op_index[op], names[tensor])
            for op, tensor in zip(
                origins.source_op.tolist(), origins.source_tensor.tolist(), strict=True
            )
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
    chains = _chains(stream.tensor)
    distances = _distances(stream.size, chains).tolist()
    return [
        COLD if previous < 0 else distance
        for previous, distance in zip(chains.previous.tolist(), distances, strict=True)
    ]


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
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    stream = _stream_of(accesses)
    near = np.array([distance <= capacity_bytes for distance in distances], dtype=bool)
    if len(near) != len(accesses):
        raise ValueError(f"{len(distances)} distances for {len(accesses)} accesses")
    flows = _flows(stream, _chains(stream.tensor), near, nontemporal, num_kernels)
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
    stream, _ = _schedule_stream(Trace(schedule, machine, SimOptions(fidelity="analytic")))
    chains = _chains(stream.tensor)
    distances = _distances(stream.size, chains)
    reused = chains.previous >= 0
    nontemporal = machine.compute.nontemporal_stores
    curve = {}
    for capacity in capacities:
        flows = _flows(stream, chains, reused & _within(distances, capacity), nontemporal, 0)
        curve[capacity] = (int(flows.read_by_source.sum()), int(flows.write_by_source.sum()))
    return curve


def simulate_analytic(schedule: Schedule, machine: Machine, options: SimOptions) -> RunResult:
    """The closed-form result of one training iteration of `schedule` on `machine`."""
    check_schedule(schedule)
    return _analytic_result(Trace(schedule, machine, options))


def _analytic_result(trace: Trace) -> RunResult:
    """simulate_analytic of a checked schedule, given its trace."""
    schedule, machine = trace.schedule, trace.machine
    stream, origins = _schedule_stream(trace)
    chains = _chains(stream.tensor)
    near = (chains.previous >= 0) & _within(
        _distances(stream.size, chains), machine.llc.size_bytes
    )
    flows = _flows(
        stream, chains, near, machine.compute.nontemporal_stores, len(schedule.kernels)
    )
    categories: dict[str, str] = {}  # layer → breakdown category, looked up once
    rows = _rows(schedule, origins, flows, categories)
    kernels, busy = _kernel_results(trace, origins.shares, flows, categories)
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


class _Stream(NamedTuple):
    """Tensor accesses as columns, in execution order (ids are dense: 0, 1, ...)."""

    kernel: Array  # kernel index
    source: Array  # source id
    tensor: Array  # tensor id
    size: Array  # bytes
    write: Array  # bool
    num_sources: int


class _Origins(NamedTuple):
    """What a schedule stream's ids stand for, and what its ops read of their inputs."""

    source_op: Array  # by source id: its op (ops numbered kernel by kernel)
    source_tensor: Array  # by source id: its tensor id
    op_kernel: list[int]  # by op: its kernel
    op_index: list[int]  # by op: its index in its kernel
    names: list[str]  # by tensor id
    shares: list[float]  # by op: the share of its input a sampled op reads


def _schedule_stream(trace: Trace) -> tuple[_Stream, _Origins]:
    """The schedule's tensor accesses as columns, with what their ids stand for."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    listing = _listing(trace.schedule, trace)
    stored = trace.stored_sizes()
    # tensor ids number the stored tensors; transient ones (never in memory) are -1
    tensor_ids = dict.fromkeys(trace.schedule.tensors, -1)
    tensor_ids.update(zip(stored, range(len(stored))))
    tensor = np.fromiter(map(tensor_ids.__getitem__, listing.names), np.int64, len(listing.names))
    num_ops = len(listing.shares)
    # by op: its reads, then its writes
    op = np.repeat(np.repeat(np.arange(num_ops), 2), listing.counts)
    write = np.repeat(np.tile(np.array([False, True]), num_ops), listing.counts)
    size = np.append(np.fromiter(stored.values(), np.int64, len(stored)), -1)[tensor]
    line = trace.machine.llc.block_bytes
    for position, share in listing.sampled:  # only the sampled elements are read
        whole = int(size[position])
        if whole >= 0:
            size[position] = min(whole, -(-math.ceil(whole * share) // line) * line)
    in_memory = tensor >= 0
    tensor, op, write, size = tensor[in_memory], op[in_memory], write[in_memory], size[in_memory]
    if len(size) and int(size.max()) * len(size) >= _INT64_BYTES:
        size = size.astype(object)  # sums could leave int64: exact Python ints
    source, firsts = _first_seen(op * len(stored) + tensor)
    ops_per_kernel = np.array(listing.ops, dtype=np.int64)
    kernel_of_op = np.repeat(np.arange(len(ops_per_kernel)), ops_per_kernel)
    # by op: its index in its kernel (its number less that of its kernel's first op)
    op_index = np.arange(num_ops) - (np.cumsum(ops_per_kernel) - ops_per_kernel)[kernel_of_op]
    stream = _Stream(
        kernel=kernel_of_op[op],
        source=source,
        tensor=tensor,
        size=size,
        write=write,
        num_sources=len(firsts),
    )
    origins = _Origins(
        source_op=op[firsts],
        source_tensor=tensor[firsts],
        op_kernel=kernel_of_op.tolist(),
        op_index=op_index.tolist(),
        names=list(stored),
        shares=listing.shares,
    )
    return stream, origins


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


def _stream_of(accesses: Sequence[TensorAccess]) -> _Stream:
    """The columns of a list of accesses (source ids made dense, in the order of the ids)."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    tensor_ids: dict[str, int] = {}
    tensors = [tensor_ids.setdefault(access.tensor, len(tensor_ids)) for access in accesses]
    original = sorted({access.source for access in accesses})
    dense = {source: rank for rank, source in enumerate(original)}
    sizes = [access.size_bytes for access in accesses]
    return _Stream(
        kernel=np.array([access.kernel for access in accesses], dtype=np.int64),
        source=np.array([dense[access.source] for access in accesses], dtype=np.int64),
        tensor=np.array(tensors, dtype=np.int64),
        # sums could leave int64: then exact Python ints
        size=np.array(sizes, dtype=np.int64 if sum(sizes) < _INT64_BYTES else object),
        write=np.array([access.write for access in accesses], dtype=bool),
        num_sources=len(original),
    )


class _Chains(NamedTuple):
    """Each access's neighbours among the accesses of the same tensor."""

    order: Array  # the accesses grouped by tensor, in execution order within a tensor
    first: Array  # along `order`: whether the access is its tensor's first
    previous: Array  # by access: the tensor's previous access (-1: none)
    following: Array  # by access: the tensor's next access (the access count: none)


def _chains(tensor: Array) -> _Chains:
    """The chains of accesses of each tensor (`tensor`: by access, its tensor id)."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    count = len(tensor)
    order = np.argsort(tensor, kind="stable")
    grouped = tensor[order]
    first = np.ones(count, dtype=bool)
    np.not_equal(grouped[1:], grouped[:-1], out=first[1:])
    later = order[1:][~first[1:]]
    earlier = order[:-1][~first[1:]]
    previous = np.full(count, -1, dtype=np.int64)
    following = np.full(count, count, dtype=np.int64)
    previous[later] = earlier
    following[earlier] = later
    return _Chains(order=order, first=first, previous=previous, following=following)


def _distances(size: Array, chains: _Chains) -> Array:
    """Per access, its bytes plus those of the distinct tensors touched since its tensor's
    previous access (meaningless for first accesses).

    The tensors touched between an access i and its tensor's previous access p are those whose
    last access j before i lies after p, i.e. j < i with next(j) > i, less those with j < p: of
    the j < p, exactly those with next(j) > next(p) = i are also counted in the first set.
    """
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    count = len(size)
    following = chains.following
    # bytes of the accesses before i whose next access is not before i: all bytes before i, less
    # those of the accesses whose next access is at or before i
    succeeded = np.zeros(count + 1, dtype=size.dtype)
    succeeded[following] = size  # a next access follows one access at most; `count`: none
    live = np.cumsum(size) - size - np.cumsum(succeeded[:count])
    # by p (accessed again): the bytes of the j < p with next(j) > next(p). Those never accessed
    # again are a prefix sum; the others' next accesses are distinct, numbered densely by rank
    again = following < count
    last_bytes = np.where(again, 0, size)
    outlived = np.cumsum(last_bytes) - last_bytes
    rank = np.cumsum(chains.previous >= 0) - 1  # of each re-access among the re-accesses
    outlived[again] += _earlier_and_later(rank[following[again]], size[again])
    return live - outlived[chains.previous] + size


def _earlier_and_later(keys: Array, weights: Array) -> Array:
    """By position p: the sum of weights[j] over j < p with keys[j] > keys[p] (keys and weights
    ≥ 0).

    A pair j < p with keys[j] > keys[p] first differs at some bit, where key j has a one and key
    p a zero. Bit by bit from the top, `order` arranges the positions with equal higher bits
    together, in position order (a wavelet matrix: each bit stably moves the zeros before the
    ones), so each p adds the weights of the ones before it in its group.
    """
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    count = len(keys)
    total = np.zeros(count, dtype=weights.dtype)
    if not count:
        return total
    order = np.arange(count)
    starts = np.ones(count, dtype=bool)  # where a group of equal higher bits starts
    for bit in reversed(range(int(keys.max()).bit_length())):
        high = keys[order] >> bit
        ones = (high & 1).astype(bool)
        group = high >> 1
        np.not_equal(group[1:], group[:-1], out=starts[1:])
        ones_weights = np.where(ones, weights[order], 0)
        before = np.cumsum(ones_weights) - ones_weights
        # the sums never decrease, so the latest group start holds the largest
        group_before = np.maximum.accumulate(np.where(starts, before, 0))
        total[order] += np.where(ones, 0, before - group_before)
        order = np.concatenate((order[~ones], order[ones]))
    return total


def _within(distances: Array, capacity_bytes: int) -> Array:
    """Whether each distance is at most `capacity_bytes`."""
    if distances.dtype != object:
        # int64 distances are below _INT64_BYTES, which holds them all (and fits in an int64)
        capacity_bytes = min(capacity_bytes, _INT64_BYTES)
    return distances <= capacity_bytes


class _Flows(NamedTuple):
    """DRAM bytes of a stream through an LLC of one capacity."""

    filled: Array  # by access: read from DRAM (a miss; write-allocate for writes)
    written: Array  # by access: a write that reaches DRAM (written back or streamed)
    read_by_source: Array
    write_by_source: Array  # charged to the write that reaches DRAM
    read_by_kernel: Array
    write_by_kernel: Array
    access_bytes: int
    hit_bytes: int


def _flows(
    stream: _Stream, chains: _Chains, near: Array, nontemporal: bool, num_kernels: int
) -> _Flows:
    """DRAM traffic of `stream` through a fully associative LRU write-back LLC in which the
    `near` accesses find their tensor (see `llc_traffic`); by kernel only if `num_kernels`."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    size, write = stream.size, stream.write
    if nontemporal:
        # a write streams to DRAM and leaves no copy: the tensor's next access misses, and
        # nothing is ever dirty in the cache
        streamed = write[chains.previous] & (chains.previous >= 0)
        hit = near & ~streamed & ~write
        filled = ~hit & ~write
        written = write
    else:
        hit = near
        filled = ~near
        written = _written_back(write, chains, near)
    return _Flows(
        filled=filled,
        written=written,
        read_by_source=_sum_by(stream.source, filled, size, stream.num_sources),
        write_by_source=_sum_by(stream.source, written, size, stream.num_sources),
        read_by_kernel=_sum_by(stream.kernel, filled, size, num_kernels),
        write_by_kernel=_sum_by(stream.kernel, written, size, num_kernels),
        access_bytes=int(size.sum()),
        hit_bytes=int(size[hit].sum()),
    )


def _written_back(write: Array, chains: _Chains, near: Array) -> Array:
    """Which writes are written back: the last write of each stay of a tensor in the cache (a
    stay ends when an access misses; the end of the iteration flushes the last)."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    order = chains.order
    stay = np.cumsum(~near[order] | chains.first)  # along `order`: which stay each access is in
    writes = np.flatnonzero(write[order])
    stays = stay[writes]
    last = np.ones(len(writes), dtype=bool)
    np.not_equal(stays[1:], stays[:-1], out=last[:-1])
    written = np.zeros(len(write), dtype=bool)
    written[order[writes[last]]] = True
    return written


def _sum_by(index: Array, chosen: Array, size: Array, length: int) -> Array:
    """Bytes of the `chosen` accesses summed by `index` (exact: integer adds)."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    totals = np.zeros(length, dtype=size.dtype)
    if length:
        np.add.at(totals, index[chosen], size[chosen])
    return totals


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    """The setters of fields `names` of `cls`, a frozen slotted dataclass without __post_init__.

    `object.__new__(cls)` with every field set through them equals `cls(...)` with the same
    values, at less than half the cost: the generated __init__ takes keywords and sets each field
    through object.__setattr__, and a result has thousands of rows.

    Raises:
        TypeError: `names` are not the fields of `cls` in order, or `cls` is not such a class.
    """
    fields_in_order = tuple(field.name for field in fields(cls))
    if fields_in_order != names or cls.__slots__ != names or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has fields {fields_in_order}, expected {names}")
    return tuple(getattr(cls, name).__set__ for name in names)


_ROW_SETTERS = _slot_setters(
    TrafficRow,
    (
        "kernel",
        "op",
        "layer",
        "layer_kind",
        "phase",
        "tensor",
        "tensor_role",
        "dram_read_bytes",
        "dram_write_bytes",
    ),
)

_KERNEL_SETTERS = _slot_setters(
    KernelResult,
    (
        "name",
        "phase",
        "ops",
        "layers",
        "layer_kind",
        "start_cycle",
        "end_cycle",
        "flops",
        "compute_cycles",
        "memory_cycles",
        "dram_read_bytes",
        "dram_write_bytes",
        "num_tiles",
    ),
)


def _rows(
    schedule: Schedule, origins: _Origins, flows: _Flows, categories: dict[str, str]
) -> list[TrafficRow]:
    """One row per source with DRAM traffic, in the order of the source ids."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    network, tensors, kernels = schedule.network, schedule.tensors, schedule.kernels
    carrying = np.flatnonzero((flows.read_by_source != 0) | (flows.write_by_source != 0))
    names, op_kernel, op_index = origins.names, origins.op_kernel, origins.op_index
    rows = []
    new = object.__new__
    set_kernel, set_op, set_layer, set_layer_kind, set_phase = _ROW_SETTERS[:5]
    set_tensor, set_role, set_read, set_write = _ROW_SETTERS[5:]
    current = -1
    for number, tensor, read, write in zip(
        origins.source_op[carrying].tolist(),
        origins.source_tensor[carrying].tolist(),
        flows.read_by_source[carrying].tolist(),
        flows.write_by_source[carrying].tolist(),
        strict=True,
    ):
        if number != current:  # the sources of one op are consecutive
            current, index = number, op_kernel[number]
            kernel = kernels[index]
            op = kernel.ops[op_index[number]]
            phase, kind = _PHASE_NAMES[kernel.phase], _KIND_NAMES[op.kind]
            category = categories.get(op.layer)
            if category is None:
                category = categories[op.layer] = network.category(op.layer)
        name = names[tensor]
        row = new(TrafficRow)
        set_kernel(row, index)
        set_op(row, kind)
        set_layer(row, op.layer)
        set_layer_kind(row, category)
        set_phase(row, phase)
        set_tensor(row, name)
        set_role(row, _ROLE_NAMES[tensors[name].role])
        set_read(row, read)
        set_write(row, write)
        rows.append(row)
    return rows


def _kernel_results(
    trace: Trace, shares: list[float], flows: _Flows, categories: dict[str, str]
) -> tuple[list[KernelResult], float]:
    """Each kernel's result, back to back from cycle 0, and the busy cycles of each core."""
    machine = trace.machine
    dram = machine.dram
    bytes_per_cycle = (
        dram.channels * dram.channel_bandwidth_bytes_per_second * dram.efficiency
    ) / machine.cores.clock_hz
    cores = machine.cores.count
    overhead = machine.compute.kernel_overhead_cycles
    reads, writes = flows.read_by_kernel.tolist(), flows.write_by_kernel.tolist()
    network = trace.schedule.network
    new = object.__new__  # results are made through their slots (see _slot_setters)
    set_name, set_phase, set_ops, set_layers, set_layer_kind, set_start, set_end = (
        _KERNEL_SETTERS[:7]
    )
    set_flops, set_compute, set_memory, set_read, set_write, set_tiles = _KERNEL_SETTERS[7:]
    kernels = []
    now = 0
    busy = 0.0
    for index, (kernel, main, kinds, layers, flops, compute) in enumerate(_work(trace, shares)):
        memory = (reads[index] + writes[index]) / bytes_per_cycle
        duration = max(compute / cores, memory, 1.0)
        end = now + round(duration + overhead)
        busy += compute / cores
        category = categories.get(main.layer)
        if category is None:
            category = categories[main.layer] = network.category(main.layer)
        result = new(KernelResult)
        set_name(result, kernel.name)
        set_phase(result, _PHASE_NAMES[kernel.phase])
        set_ops(result, kinds)
        set_layers(result, layers)
        set_layer_kind(result, category)
        set_start(result, now)
        set_end(result, end)
        set_flops(result, flops)
        set_compute(result, round(compute))
        set_memory(result, round(memory * cores))
        set_read(result, reads[index])
        set_write(result, writes[index])
        set_tiles(result, 0)
        kernels.append(result)
        now = end
    return kernels, busy


def _work(
    trace: Trace, shares: list[float]
) -> Iterator[tuple[Kernel, Op, tuple[str, ...], tuple[str, ...], int, float]]:
    """By kernel: it, its main op, op kinds, layers and FLOPs, and the core cycles of all its
    work as the fast mode charges it (halos aside); `shares`: by op, as in _Listing."""
    offset = 0  # the number of the kernel's first op
    for kernel in trace.schedule.kernels:
        ops = kernel.ops
        if len(ops) == 1:  # most kernels: the same values, without the Kernel methods' generators
            op = ops[0]
            compute = trace.compute_cycles(op, shares[offset], False)
            yield kernel, op, (_KIND_NAMES[op.kind],), (op.layer,), op.flops, compute
        else:
            main = kernel.main_op()
            compute = sum(
                trace.compute_cycles(op, share, op is main)
                for op, share in zip(ops, shares[offset : offset + len(ops)], strict=True)
            )
            kinds = tuple([_KIND_NAMES[op.kind] for op in ops])
            yield kernel, main, kinds, kernel.layers(), kernel.flops(), compute
        offset += len(ops)
