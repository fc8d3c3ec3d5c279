"""Analytic fidelity: stack distances by hand, exact agreement with LRU caches on whole-tensor
streams, monotonicity in the cache size, conservation and bounds of its results, and the vectorised
model against the per-access reference it replaced."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnsim.config.machine import load_machine
from bnsim.graph.zoo import build_model
from bnsim.result import TrafficRow, from_columns
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.sim._memory import LineCache, RangeCache
from bnsim.sim.analytic import (
    COLD,
    TensorAccess,
    Traffic,
    llc_traffic,
    stack_distances,
    tensor_accesses,
    traffic_by_capacity,
)
from bnsim.sim.dramrate import channel_rates
from bnsim.sim.stackmodel import earlier_and_later
from bnsim.trace import SimOptions, Trace
from bnsim.trace.dataflow import input_passes, store_kind, weight_passes

LINE = 64
SIZES = {"A": 100, "B": 50, "C": 30}
SCHEMES = ["baseline", "fission", "bnff", "recompute", "bnff+sampling"]


def stream(*names: str, written: str = "") -> list[TensorAccess]:
    return [
        TensorAccess(kernel=0, source=i, tensor=n, size_bytes=SIZES[n], write=n in written)
        for i, n in enumerate(names)
    ]


def test_stack_distances_by_hand() -> None:
    """A B A C B A: the second A has B (50) between, the second B has A and C (130), the third A
    has C and B (80); each adds its own bytes."""
    assert stack_distances(stream("A", "B", "A", "C", "B", "A")) == [
        COLD,
        COLD,
        150,
        COLD,
        180,
        180,
    ]


def test_traffic_through_one_capacity_by_hand() -> None:
    """At 160 B the second A hits (150), the other re-accesses miss (180). C is written: its cold
    write reads it (write-allocate) and the end of the iteration writes it back."""
    accesses = stream("A", "B", "A", "C", "B", "A", written="C")
    traffic = llc_traffic(accesses, stack_distances(accesses), 160, num_kernels=1)
    assert traffic.dram_read_bytes() == 100 + 50 + 30 + 50 + 100
    assert traffic.dram_write_bytes() == 30
    assert traffic.write_bytes == {3: 30}  # charged to the writer
    assert traffic.hit_bytes == 100
    assert traffic.kernel_bytes == [360]


def test_non_temporal_stores_leave_no_copy() -> None:
    """Streamed out, C is re-read from DRAM even though it would fit."""
    accesses = [TensorAccess(0, 0, "C", 30, write=True), TensorAccess(0, 1, "C", 30, write=False)]
    cached = llc_traffic(accesses, stack_distances(accesses), 1000)
    streamed = llc_traffic(accesses, stack_distances(accesses), 1000, nontemporal=True)
    assert (cached.dram_read_bytes(), cached.dram_write_bytes()) == (30, 30)
    assert (streamed.dram_read_bytes(), streamed.dram_write_bytes()) == (30, 30)
    assert streamed.read_bytes == {1: 30}  # the read after the stream, not a fill before it


whole_tensor_streams = st.tuples(
    st.lists(st.integers(1, 8), min_size=1, max_size=6),  # tensor sizes in lines
    st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=40),
    st.integers(1, 30),  # capacity in lines
)


@settings(max_examples=300, deadline=None)
@given(whole_tensor_streams)
def test_fully_associative_caches_equal_the_stack_model_on_whole_tensor_streams(case) -> None:
    """docs/model.md (Fidelity): on streams of whole tensors, range and line LRU caches and the
    stack distance model agree exactly on DRAM reads (with write-allocate fills) and write-backs."""
    sizes, sequence, capacity_lines = case
    bases = [sum(sizes[:i]) * LINE for i in range(len(sizes))]
    accesses = []
    range_cache = RangeCache(capacity_lines * LINE)
    line_cache = LineCache(capacity_lines * LINE, capacity_lines, LINE)
    for index, (which, write) in enumerate(sequence):
        tensor = which % len(sizes)
        start, stop = bases[tensor], bases[tensor] + sizes[tensor] * LINE
        for cache in (range_cache, line_cache):
            cache.py_access(start, stop, write, index)
        accesses.append(TensorAccess(0, index, f"t{tensor}", stop - start, write))
    range_cache.py_flush()
    line_cache.py_flush()
    traffic = llc_traffic(accesses, stack_distances(accesses), capacity_lines * LINE)
    for cache in (range_cache, line_cache):
        assert traffic.dram_read_bytes() == cache.miss_bytes
        assert traffic.dram_write_bytes() == cache.writeback_bytes
        assert traffic.hit_bytes == cache.hit_bytes


def test_one_pass_gives_every_cache_size() -> None:
    """Traffic never grows with the cache; an infinite cache leaves only compulsory traffic (each
    tensor's first access, each written tensor once); the LLC's point is the simulated one."""
    machine = load_machine("hwconfigs/tiny.yaml")
    schedule = build_schedule(build_model("tiny_cnn", batch=2), "bnff")
    capacities = [0, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 1 << 40]
    curve = traffic_by_capacity(schedule, machine, capacities)
    totals = [sum(curve[capacity]) for capacity in capacities]
    assert totals == sorted(totals, reverse=True)
    assert totals[0] > totals[-1]
    accesses = tensor_accesses(Trace(schedule, machine, SimOptions()))
    first: dict[str, int] = {}
    for access in accesses:
        first.setdefault(access.tensor, access.size_bytes)
    written = {access.tensor: access.size_bytes for access in accesses if access.write}
    assert curve[1 << 40] == (sum(first.values()), sum(written.values()))
    run = simulate(schedule, machine, SimOptions(fidelity="analytic"))
    assert sum(traffic_by_capacity(schedule, machine, [machine.llc.size_bytes]).values(), ()) == (
        run.dram_read_bytes,
        run.dram_write_bytes,
    )


def test_analytic_results_add_up_and_respect_the_roofline() -> None:
    machine = load_machine("hwconfigs/cmp16.yaml")
    schedule = build_schedule(build_model("densenet121", batch=2, image=64), "bnff")
    options = SimOptions(fidelity="analytic")
    run = simulate(schedule, machine, options)
    assert run == simulate(schedule, machine, options)  # deterministic
    assert run.fidelity == "analytic"
    rows = run.breakdown("phase", "layer_kind")
    assert sum(row["dram_read_bytes"] for row in rows) == run.dram_read_bytes
    assert sum(row["dram_write_bytes"] for row in rows) == run.dram_write_bytes
    assert sum(kernel.dram_read_bytes for kernel in run.kernels) == run.dram_read_bytes
    assert run.cycles == run.kernels[-1].end_cycle
    bytes_per_cycle = machine.dram.channels * max(channel_rates(machine)) / machine.cores.clock_hz
    assert run.cycles >= run.dram_bytes() / bytes_per_cycle
    peak = machine.cores.count * machine.cores.flops_per_cycle()
    assert run.cycles >= run.flops / peak
    overhead = machine.compute.kernel_overhead_cycles
    assert run.cycles >= len(run.kernels) * overhead


# --- the vectorised model against the per-access reference it replaced ------------------------


def reference_distances(accesses: list[TensorAccess]) -> list[float]:
    """Stack distances with a Fenwick tree, one access at a time (the first implementation)."""
    count = len(accesses)
    tree = [0] * (count + 1)  # each tensor's bytes at the position of its last access
    last: dict[str, int] = {}
    distances: list[float] = []

    def add(index: int, amount: int) -> None:
        while index <= count:
            tree[index] += amount
            index += index & -index

    def prefix(index: int) -> int:
        total = 0
        while index > 0:
            total += tree[index]
            index -= index & -index
        return total

    for position, access in enumerate(accesses):
        previous = last.get(access.tensor)
        if previous is None:
            distances.append(COLD)
        else:
            between = prefix(position) - prefix(previous + 1)
            distances.append(between + access.size_bytes)
            add(previous + 1, -accesses[previous].size_bytes)
        add(position + 1, access.size_bytes)
        last[access.tensor] = position
    return distances


def reference_traffic(
    accesses: list[TensorAccess],
    distances: list[float],
    capacity: int,
    nontemporal: bool | list[int],
    num_kernels: int,
) -> Traffic:
    """llc_traffic one access at a time, with the cache's dirty and streamed tensors.

    `nontemporal`: whether every store streams, or per access its kind (0 a load; stores: 1 read
    for ownership, 2 non-temporal, 3 allocate without reading)."""
    kinds = (
        [(2 if nontemporal else 1) if access.write else 0 for access in accesses]
        if isinstance(nontemporal, bool)
        else nontemporal
    )
    read: dict[int, int] = {}
    written: dict[int, int] = {}
    kernel_bytes = [0] * num_kernels
    dirty: dict[str, TensorAccess] = {}
    streamed: set[str] = set()
    access_bytes = hit_bytes = 0

    def charge(totals: dict[int, int], access: TensorAccess) -> None:
        totals[access.source] = totals.get(access.source, 0) + access.size_bytes
        if num_kernels:
            kernel_bytes[access.kernel] += access.size_bytes

    for access, distance, kind in zip(accesses, distances, kinds, strict=True):
        access_bytes += access.size_bytes
        hit = distance <= capacity and access.tensor not in streamed
        streamed.discard(access.tensor)
        if not hit and access.tensor in dirty:
            charge(written, dirty.pop(access.tensor))
        if kind == 2:
            dirty.pop(access.tensor, None)
            charge(written, access)
            streamed.add(access.tensor)
            continue
        if hit:
            hit_bytes += access.size_bytes
        elif kind != 3:  # an allocating store reads nothing
            charge(read, access)
        if access.write:
            dirty[access.tensor] = access
    for write in dirty.values():
        charge(written, write)
    return Traffic(read, written, kernel_bytes, access_bytes, hit_bytes)


access_streams = st.lists(
    st.tuples(
        st.integers(0, 7),  # tensor
        st.integers(0, 300),  # bytes (a tensor's accesses differ in size, as sampled reads do)
        st.booleans(),  # write
        st.integers(-1, 5),  # source (-1: unattributed; sources repeat, as an op's read and write)
        st.integers(0, 3),  # kernel
    ),
    max_size=60,
)


def as_accesses(case: list[tuple[int, int, bool, int, int]], scale: int) -> list[TensorAccess]:
    return [
        TensorAccess(kernel, source, f"t{tensor}", size * scale, write)
        for tensor, size, write, source, kernel in case
    ]


@settings(max_examples=400, deadline=None)
@given(access_streams, st.integers(0, 2000), st.booleans(), st.sampled_from([1, 1 << 60]))
def test_vectorised_model_equals_the_per_access_reference(
    case, capacity, nontemporal, scale
) -> None:
    """Distances and traffic of random streams equal the Fenwick tree and the per-access cache,
    also with sums past int64 (`scale`), with non-temporal stores and with per-kernel bytes."""
    accesses = as_accesses(case, scale)
    distances = stack_distances(accesses)
    assert distances == reference_distances(accesses)
    capacity *= scale
    traffic = llc_traffic(accesses, distances, capacity, nontemporal=nontemporal, num_kernels=4)
    assert traffic == reference_traffic(accesses, distances, capacity, nontemporal, 4)
    assert llc_traffic(accesses, distances, capacity, nontemporal=nontemporal).kernel_bytes == []


@settings(max_examples=200, deadline=None)
@given(access_streams, st.lists(st.sampled_from([0, 100, 10**4, COLD]), max_size=60))
def test_llc_traffic_takes_any_distances(case, given_distances) -> None:
    """Distances need not be a stack's: a cold access may be said to hit, a repeat to miss."""
    accesses = as_accesses(case, 1)[: len(given_distances)]
    distances = given_distances[: len(accesses)]
    assert llc_traffic(accesses, distances, 500, num_kernels=4) == reference_traffic(
        accesses, distances, 500, False, 4
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 9)), max_size=50))
def test_earlier_and_later_by_brute_force(pairs) -> None:
    """By position p: the weights of the earlier positions with a larger key."""
    keys = np.array([key for key, _ in pairs], dtype=np.int64)
    weights = np.array([weight for _, weight in pairs], dtype=np.int64)
    expected = [
        sum(weight for key, weight in pairs[:p] if key > pairs[p][0]) for p in range(len(pairs))
    ]
    assert earlier_and_later(keys, weights).tolist() == expected  # compiled, where it was built
    assert earlier_and_later(keys, weights, compiled=False).tolist() == expected
    assert earlier_and_later(keys, weights.astype(object)).tolist() == expected  # Python ints


def reference_kinds(trace: Trace) -> list[int]:
    """Per access of reference_accesses, its kind: 0 a load, else how its op stores."""
    tensors = trace.schedule.tensors
    kinds = []
    for kernel in trace.schedule.kernels:
        produced: set[str] = set()
        for op_index, op in enumerate(kernel.ops):
            reads = [n for n in op.reads if not tensors[n].transient and n not in produced]
            kinds += [0] * len(reads)
            store = store_kind(trace.schedule, kernel, op_index, trace.machine)
            produced.update(op.writes)
            kinds += [store] * sum(1 for n in op.writes if not tensors[n].transient)
    return kinds


def reference_accesses(trace: Trace) -> list[TensorAccess]:
    """tensor_accesses op by op (the first implementation)."""
    tensors = trace.schedule.tensors
    line = trace.machine.llc.block_bytes
    accesses = []
    for index, kernel in enumerate(trace.schedule.kernels):
        produced: set[str] = set()
        for op_index, op in enumerate(kernel.ops):
            share = trace.sampled_share(op)
            for position, name in enumerate(op.reads):
                if tensors[name].transient or name in produced:
                    continue
                size = trace.stored_bytes(name)
                if position == 0 and share < 1:
                    size = min(size, -(-math.ceil(size * share) // line) * line)
                source = trace.source(index, op_index, name)
                accesses.append(TensorAccess(index, source, name, size, False))
            for name in op.writes:
                produced.add(name)
                if not tensors[name].transient:
                    source = trace.source(index, op_index, name)
                    size = trace.stored_bytes(name)
                    accesses.append(TensorAccess(index, source, name, size, True))
    return accesses


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("overrides", [(), ("compute.nontemporal_stores=true",)])
def test_analytic_runs_equal_the_reference_model(scheme: str, overrides: tuple[str, ...]) -> None:
    """Accesses, source ids and every traffic row and kernel's bytes of a run are those of the
    per-access reference model (sampled reads, fused kernels and streamed stores included)."""
    machine = load_machine("hwconfigs/tiny.yaml", list(overrides))
    schedule = build_schedule(build_model("tiny_cnn", batch=2), scheme)
    reference_trace = Trace(schedule, machine, SimOptions(fidelity="analytic"))
    expected = reference_accesses(reference_trace)
    trace = Trace(schedule, machine, SimOptions(fidelity="analytic"))
    assert tensor_accesses(trace) == expected
    assert trace.sources == reference_trace.sources
    unattributed = tensor_accesses(Trace(schedule, machine, SimOptions()), attributed=False)
    assert unattributed == [
        TensorAccess(a.kernel, -1, a.tensor, a.size_bytes, a.write) for a in expected
    ]
    kinds = reference_kinds(reference_trace)
    traffic = reference_traffic(
        expected,
        reference_distances(expected),
        machine.llc.size_bytes,
        kinds,
        len(schedule.kernels),
    )
    run = simulate(schedule, machine, SimOptions(fidelity="analytic"))
    rows = [
        (row.kernel, row.tensor, row.dram_read_bytes, row.dram_write_bytes) for row in run.traffic
    ]
    assert rows == [
        (source.kernel, source.tensor, traffic.read_bytes.get(i, 0), traffic.write_bytes.get(i, 0))
        for i, source in enumerate(reference_trace.sources)
        if traffic.read_bytes.get(i, 0) or traffic.write_bytes.get(i, 0)
    ]
    kernel_bytes = [kernel.dram_read_bytes + kernel.dram_write_bytes for kernel in run.kernels]
    assert kernel_bytes == traffic.kernel_bytes
    assert run.caches[0][1].hits == traffic.hit_bytes // machine.llc.block_bytes
    # capacities at, just below and above distances that occur: the edges of hits
    distances = sorted({d for d in reference_distances(expected) if d != COLD})
    capacities = [0, 1 << 62, 1 << 70, *distances[::7], *(d - 1 for d in distances[::5])]
    curve = {}
    for capacity in capacities:
        at = reference_traffic(expected, reference_distances(expected), capacity, kinds, 0)
        passes = weight_pass_bytes(reference_trace, capacity)
        curve[capacity] = (at.dram_read_bytes() + passes, at.dram_write_bytes())
    assert traffic_by_capacity(schedule, machine, capacities) == curve


def weight_pass_bytes(trace: Trace, capacity: int) -> int:
    """The later passes over weights that overflow an LLC of `capacity` bytes, each read again
    (tiny_cnn's direct convolutions read their weights once per image; its inputs in one pass)."""
    schedule, machine = trace.schedule, trace.machine
    total = 0
    for kernel in schedule.kernels:
        assert input_passes(schedule, kernel, machine) == 1
        passes, strips = weight_passes(schedule, kernel, machine)
        if passes > 1:
            size = trace.stored_bytes(kernel.main_op().reads[1])
            total += (passes - 1) * size if -(-size // strips) > capacity else 0
    return total


def test_rows_built_from_columns_are_the_rows_their_constructors_make() -> None:
    """The rows and kernels an analytic run builds column by column equal those built field by
    field (and pickle); columns that are not the class's fields, or of unequal length, are
    refused."""
    run = simulate(
        build_schedule(build_model("tiny_cnn", batch=2), "bnff"),
        load_machine("hwconfigs/tiny.yaml"),
        SimOptions(fidelity="analytic"),
    )
    for made in (run.traffic[0], run.kernels[0]):
        cls = type(made)
        assert made == cls(**made._asdict())
        assert pickle.loads(pickle.dumps(made)) == made
    rows = run.traffic[:3]
    columns = {name: [getattr(row, name) for row in rows] for name in TrafficRow._fields}
    assert from_columns(TrafficRow, columns) == list(rows)
    with pytest.raises(ValueError, match="has fields"):
        from_columns(TrafficRow, {"kernel": [1], "op": ["conv_fwd"]})
    with pytest.raises(ValueError, match="different lengths"):
        from_columns(TrafficRow, {**columns, "layer": columns["layer"][:2]})


def test_what_is_remembered_of_a_schedule_never_carries_one_machines_numbers_to_another() -> None:
    """The analytic plan (per schedule) and the layout (per schedule, element size and layout)
    are made once and reused; each run still equals a run of a fresh copy of the schedule."""
    schedule = build_schedule(build_model("tiny_cnn", batch=2), "bnff+sampling")
    machines = [
        load_machine("hwconfigs/tiny.yaml", overrides)
        for overrides in (
            [],
            ["dtype=fp16"],
            ["compute.layout=nChw16c", "llc.size=16KiB"],
            ["compute.layout=nhwc"],
            ["compute.nontemporal_stores=true"],
            [],
        )
    ]
    for machine in machines:
        for fidelity in ("analytic", "fast"):
            options = SimOptions(fidelity=fidelity)
            fresh = pickle.loads(pickle.dumps(schedule))  # a new schedule: nothing remembered
            assert fresh is not schedule
            assert simulate(schedule, machine, options) == simulate(fresh, machine, options)
