"""The memory system, worked by hand on machines of a few lines: loads, the three store kinds,
inclusion, write-backs and their attribution, channels."""

from __future__ import annotations

import pytest

from bnsim.sim._memory import MemorySystem

LINE = 64
LOAD, FETCH, STREAM, ALLOCATE = 0, 1, 2, 3  # access kinds (bnsim.trace.dataflow's store kinds)


def machine(
    private_lines: int = 2,
    llc_lines: int = 4,
    inclusive: bool = False,
    caches: str = "range",
    channels: int = 2,
) -> MemorySystem:
    """Two cores; 2 channels interleaved every 128 B, 1 B/cycle each whatever the mix of reads and
    writes, 100 cycles latency."""
    return MemorySystem(
        2,
        private_lines * LINE,
        llc_lines * LINE,
        inclusive,
        False,
        LINE,
        channels,
        128,
        (1.0,) * 5,
        100.0,
        caches,
        private_lines,
        llc_lines,
    )


@pytest.mark.parametrize("caches", ["range", "line"])
def test_a_load_misses_to_dram_then_hits_in_the_private_cache(caches: str) -> None:
    memory = machine(private_lines=4, caches=caches)
    # 256 B: 128 B on each channel at 1 B/cycle, then the latency
    assert memory.run_tile(0, [(0, 256, LOAD, 3)], 0.0) == (0, 0, 256, 128.0 + 100.0, 0.0)
    assert memory.run_tile(0, [(0, 256, LOAD, 3)], 500.0) == (256, 0, 0, 500.0, 500.0)
    assert memory.run_tile(1, [(0, 64, LOAD, 4)], 600.0) == (
        0,
        64,
        0,
        600.0,
        600.0,
    )  # the LLC's copy
    assert memory.source_bytes() == ({3: 256}, {})


@pytest.mark.parametrize("caches", ["range", "line"])
def test_a_line_another_core_is_fetching_arrives_when_its_fetch_does(caches: str) -> None:
    """Core 0's step fetches 256 B from DRAM (there at cycle 228, or when `settle` says); core 1
    finding those lines in the LLC earlier waits for them, later does not."""
    memory = machine(private_lines=4, caches=caches)
    memory.run_tile(0, [(0, 256, LOAD, 0)], 0.0)
    assert memory.run_tile(1, [(0, 64, LOAD, 1)], 10.0) == (0, 64, 0, 10.0, 228.0)
    memory.run_tile(0, [(1024, 1088, LOAD, 0)], 300.0)
    memory.settle(900.0)  # its step took until 900
    assert memory.run_tile(1, [(1024, 1088, LOAD, 1)], 400.0)[4] == 900.0
    assert memory.run_tile(1, [(128, 192, LOAD, 1)], 950.0)[4] == 950.0  # arrived long ago


@pytest.mark.parametrize(
    ("kind", "dram_reads"),
    [(FETCH, LINE), (ALLOCATE, 0)],  # a read for ownership; an allocating store reads nothing
)
def test_a_store_miss_reads_the_line_unless_it_allocates(kind: int, dram_reads: int) -> None:
    memory = machine()
    private, llc, dram, _, _ = memory.run_tile(0, [(1024, 1024 + LINE, kind, 5)], 0.0)
    assert (private, llc, dram) == (0, 0, dram_reads)
    assert memory.source_bytes() == (({5: LINE} if dram_reads else {}), {})
    memory.flush(1000.0)
    assert memory.source_bytes()[1] == {5: LINE}  # written back at the end, to its writer


def test_a_non_temporal_store_bypasses_and_invalidates_the_caches() -> None:
    memory = machine()
    memory.run_tile(1, [(0, LINE, LOAD, 1)], 0.0)
    assert memory.run_tile(0, [(0, LINE, STREAM, 2)], 10.0)[:3] == (0, 0, 0)
    assert memory.source_bytes() == ({1: LINE}, {2: LINE})  # written at once, nothing read
    assert memory.run_tile(1, [(0, LINE, LOAD, 3)], 20.0)[:3] == (0, 0, LINE)  # no copy left
    memory.flush(30.0)
    assert memory.source_bytes()[1] == {2: LINE}  # the stored line was never dirty in a cache


@pytest.mark.parametrize(("inclusive", "reread"), [(True, (0, 0, LINE)), (False, (LINE, 0, 0))])
def test_an_inclusive_llc_takes_back_what_it_evicts(inclusive: bool, reread) -> None:
    """Core 0 holds line 0; core 1's four lines push it out of the 4-line LLC. Inclusive, core 0's
    copy goes too and its re-read comes from DRAM; otherwise core 0 still hits."""
    memory = machine(inclusive=inclusive)
    memory.run_tile(0, [(0, LINE, LOAD, 0)], 0.0)
    memory.run_tile(1, [(LINE, 5 * LINE, LOAD, 1)], 10.0)
    assert memory.run_tile(0, [(0, LINE, LOAD, 0)], 20.0)[:3] == reread


@pytest.mark.parametrize("caches", ["range", "line"])
def test_dirty_lines_go_to_the_llc_then_to_dram_charged_to_their_writer(caches: str) -> None:
    memory = machine(private_lines=2, llc_lines=8, caches=caches)
    memory.run_tile(0, [(0, 2 * LINE, FETCH, 7)], 0.0)  # two dirty lines fill the private cache
    memory.run_tile(0, [(4 * LINE, 6 * LINE, LOAD, 8)], 10.0)  # ... and are pushed to the LLC
    assert memory.source_bytes()[1] == {}
    stats = memory.cache_stats()
    assert stats["private"][4] == 2 * LINE  # read, write, hit, miss, write-back bytes
    assert stats["llc"][1] == 2 * LINE  # installed as writes
    memory.flush(20.0)
    assert memory.source_bytes() == ({7: 2 * LINE, 8: 2 * LINE}, {7: 2 * LINE})


def test_line_fidelity_maps_every_byte_to_its_channel() -> None:
    memory = machine(caches="line")
    memory.run_tile(0, [(128, 192, LOAD, 0)], 0.0)  # the second 128-byte chunk: channel 1
    assert memory.channel_bytes() == [0.0, 64.0]
    memory.run_tile(0, [(256, 640, LOAD, 0)], 10.0)  # chunks 2, 3, 4: channels 0, 1, 0
    assert memory.channel_bytes() == [256.0, 192.0]


def test_reads_queue_behind_earlier_reads_on_the_same_channel() -> None:
    memory = machine(channels=1)
    assert memory.run_tile(0, [(0, 256, LOAD, 0)], 0.0)[3] == 256.0 + 100.0
    # core 1 asks at cycle 56: the channel is busy until 256, then moves its 128 B
    assert memory.run_tile(1, [(1024, 1152, LOAD, 0)], 56.0)[3] == 256.0 + 128.0 + 100.0


def test_a_channel_transfers_its_queue_at_its_rate_whoever_queued_it() -> None:
    """1 B/cycle: 256 B queued at 0 and 128 B at 56 (behind them) are moved by 256 and by 384;
    at 300, 44 B of the second read have gone; idle cycles move nothing."""
    memory = machine(channels=1)
    memory.run_tile(0, [(0, 256, LOAD, 0)], 0.0)
    memory.run_tile(1, [(1024, 1152, LOAD, 0)], 56.0)
    moved = [memory.channel_transferred(cycle)[0] for cycle in (56.0, 256.0, 300.0, 384.0, 900.0)]
    assert moved == [56.0, 256.0, 300.0, 384.0, 384.0]
    assert memory.channel_bytes() == [384.0]  # queued: all of it, at once
    memory.run_tile(0, [(2048, 2112, LOAD, 0)], 1000.0)  # after an idle stretch
    assert memory.channel_transferred(1032.0) == [384.0 + 32.0]


def test_the_compiled_dominance_sum_equals_numpys() -> None:
    """The analytic fidelity's Fenwick tree against the vectorised NumPy reference."""
    import numpy as np  # noqa: PLC0415 (a base dependency)

    from bnsim.sim._memory import earlier_and_later_into  # noqa: PLC0415
    from bnsim.sim.stackmodel import earlier_and_later  # noqa: PLC0415

    rng = np.random.default_rng(3)
    for count in (1, 2, 17, 1000):
        keys = rng.integers(0, count * 2, count).astype(np.int64)
        weights = rng.integers(0, 1 << 40, count).astype(np.int64)
        total = np.zeros(count, dtype=np.int64)
        earlier_and_later_into(keys, weights, total)
        assert total.tolist() == earlier_and_later(keys, weights, compiled=False).tolist()


@pytest.mark.parametrize("caches", ["range", "line"])
def test_a_write_after_the_tiles_stores_as_its_kind_says(caches: str) -> None:
    """A reduced tensor's write: an ordinary store reads its lines first, an allocating one
    (a GPU) does not, a non-temporal one goes straight to DRAM."""
    fetched, allocated, streamed = machine(caches=caches), machine(caches=caches), machine()
    fetched.write(0, 0, 128, 5, 0.0, FETCH)
    allocated.write(0, 0, 128, 5, 0.0, ALLOCATE)
    streamed.write(0, 0, 128, 5, 0.0, STREAM)
    assert fetched.source_bytes() == ({5: 128}, {})
    assert allocated.source_bytes() == ({}, {})
    assert streamed.source_bytes() == ({}, {5: 128})
