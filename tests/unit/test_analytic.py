"""Analytic fidelity: stack distances by hand, exact agreement with LRU caches on whole-tensor
streams, monotonicity in the cache size, conservation and bounds of its results."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bnsim.graph.zoo import build_model
from bnsim.hw import load_machine
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.sim.analytic import (
    COLD,
    TensorAccess,
    llc_traffic,
    stack_distances,
    tensor_accesses,
    traffic_by_capacity,
)
from bnsim.sim.cache import RangeCache
from bnsim.sim.linecache import LineCache
from bnsim.trace import SimOptions, Trace

LINE = 64
SIZES = {"A": 100, "B": 50, "C": 30}


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
    """ARCHITECTURE.md §6: on streams of whole tensors, range and line LRU caches and the stack
    distance model agree exactly on DRAM reads (with write-allocate fills) and write-backs."""
    sizes, sequence, capacity_lines = case
    bases = [sum(sizes[:i]) * LINE for i in range(len(sizes))]
    accesses = []
    range_cache = RangeCache(capacity_bytes=capacity_lines * LINE)
    line_cache = LineCache(capacity_lines * LINE, ways=capacity_lines, line=LINE)
    for index, (which, write) in enumerate(sequence):
        tensor = which % len(sizes)
        start, stop = bases[tensor], bases[tensor] + sizes[tensor] * LINE
        for cache in (range_cache, line_cache):
            cache.access(start, stop, write=write, owner=index, evictions=[])
        accesses.append(TensorAccess(0, index, f"t{tensor}", stop - start, write))
    range_cache.flush()
    line_cache.flush()
    traffic = llc_traffic(accesses, stack_distances(accesses), capacity_lines * LINE)
    for cache in (range_cache, line_cache):
        assert traffic.dram_read_bytes() == cache.stats.miss_bytes
        assert traffic.dram_write_bytes() == cache.stats.writeback_bytes
        assert traffic.hit_bytes == cache.stats.hit_bytes


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
    dram = machine.dram
    bytes_per_cycle = (
        dram.channels * dram.channel_bandwidth_bytes_per_second * dram.efficiency
    ) / machine.cores.clock_hz
    assert run.cycles >= run.dram_bytes() / bytes_per_cycle
    peak = machine.cores.count * machine.cores.flops_per_cycle()
    assert run.cycles >= run.flops / peak
    overhead = machine.compute.kernel_overhead_cycles
    assert run.cycles >= len(run.kernels) * overhead
