"""What the analytic fidelity needs of a schedule, planned once per schedule whatever the machine:
its tensor accesses and ops as columns, what their ids stand for, each tensor's chain of accesses,
and the fields of its kernels' results that only the schedule decides.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from bnsim.schedule import (
    Op,
    OpKind,
    Phase,
    Schedule,
    TensorRole,
)
from bnsim.sim import passes, stackmodel
from bnsim.trace import Trace
from bnsim.trace.dataflow import store_kinds

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Array = NDArray[Any]


# the enums' plain strings, looked up once: an Enum's `.value` is a Python-level property
_KIND_OF, _LAYER_OF, _FLOPS_OF = attrgetter("kind"), attrgetter("layer"), attrgetter("flops")
_KIND_NAMES = {kind: kind.value for kind in OpKind}


_PHASE_NAMES = {phase: phase.value for phase in Phase}


_ROLE_NAMES = {role: role.value for role in TensorRole}


_STATISTICS = OpKind.BN_STATS  # looked up once: a member lookup on an Enum class is slow


class Plan(NamedTuple):
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
_PLANS: weakref.WeakKeyDictionary[Schedule, Plan] = weakref.WeakKeyDictionary()


def schedule_stream(trace: Trace) -> tuple[stackmodel.Stream, Plan]:
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


def _store_kinds(trace: Trace, plan: Plan) -> Array:
    """Per op of the schedule, in order, its stores' kind (bnsim.trace.dataflow.store_kind)."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    compute = trace.machine.compute
    known = _STORE_KINDS.setdefault(trace.schedule, {})
    key = (compute.library, compute.nontemporal_stores, compute.layout)
    kinds = known.get(key)
    if kinds is None:
        kinds = known[key] = np.array(store_kinds(trace.schedule, trace.machine), dtype=np.int8)
    return kinds


def _plan(trace: Trace) -> Plan:
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
    work = take(list(map(_FLOPS_OF, ops)), first_op)
    kernel_kinds: list[tuple[str, ...]] = list(zip(take(kinds, first_op)))
    kernel_layers: list[tuple[str, ...]] = list(zip(take(layers, first_op)))
    kernel_categories = take(categories, first_op)
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
    return Plan(
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


def take(values: Sequence[Any], index: Array) -> list[Any]:
    """values[i] for each i in `index`."""
    return list(map(values.__getitem__, index.tolist()))
