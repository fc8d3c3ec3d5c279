"""The compiled memory model gives exactly the numbers of the pure-Python one."""

from __future__ import annotations

import random

import pytest

from bnsim.graph.zoo import build_model
from bnsim.hw import load_machine
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.sim.cache import RangeCache
from bnsim.sim.linecache import LineCache
from bnsim.sim.memory import MemorySystem
from bnsim.trace import SimOptions

fast = pytest.importorskip("bnsim.sim._fastmemory", reason="compiled memory model not built")


def test_range_caches_agree_access_by_access() -> None:
    rng = random.Random(1)
    for _ in range(400):
        capacity = rng.randint(1, 20) * 64
        python, compiled = RangeCache(capacity_bytes=capacity), fast.FastRangeCache(capacity, True)
        for _ in range(30):
            start, size = rng.randint(0, 40) * 64, rng.randint(1, 24) * 64
            write, owner, fill = rng.random() < 0.5, rng.randint(0, 3), rng.random() < 0.8
            evictions: list = []
            misses = python.access(
                start, start + size, write=write, owner=owner, evictions=evictions, fill=fill
            )
            expected = (
                [m for m in misses] if fill else [],
                [(e.start, e.stop, e.dirty, e.owner) for e in evictions],
            )
            assert compiled.py_access(start, start + size, write, owner, fill) == expected
            assert compiled.pieces_list() == python.pieces()


def test_line_caches_agree_operation_by_operation() -> None:
    rng = random.Random(3)
    for _ in range(600):
        ways, sets, report_clean = (
            rng.randint(1, 9),
            rng.choice([1, 2, 3, 4, 8]),
            rng.random() < 0.5,
        )
        python = LineCache(ways * sets * 64, ways, 64, report_clean)
        compiled = fast.FastLineCache(ways * sets * 64, ways, 64, report_clean)
        for _ in range(30):
            start, size = rng.randint(0, 60) * 64, rng.randint(1, 20) * 64
            operation = rng.random()
            if operation < 0.8:
                write, owner, fill = rng.random() < 0.5, rng.randint(0, 5), rng.random() < 0.8
                assert_same_access(python, compiled, start, start + size, write, owner, fill)
            elif operation < 0.95:
                dropped = [astuple(e) for e in python.invalidate(start, start + size)]
                assert compiled.py_invalidate(start, start + size) == dropped
            else:
                assert compiled.py_flush() == [astuple(e) for e in python.flush()]
            assert compiled.lines() == python.lines()
            assert (compiled.hit_bytes, compiled.miss_bytes, compiled.writeback_bytes) == (
                python.stats.hit_bytes,
                python.stats.miss_bytes,
                python.stats.writeback_bytes,
            )


def test_line_caches_agree_on_streams_through_the_whole_cache() -> None:
    """Accesses of two to five times the cache's lines take the compiled cache's stream shortcut
    (exact part, then victims and final state computed per set); they must equal the line by line
    reference, whatever the cache held before, including dirty lines of other owners."""
    rng = random.Random(7)
    for _ in range(300):
        ways, sets, report_clean = (
            rng.randint(1, 6),
            rng.choice([1, 2, 3, 4, 8]),
            rng.random() < 0.5,
        )
        lines = ways * sets
        python = LineCache(lines * 64, ways, 64, report_clean)
        compiled = fast.FastLineCache(lines * 64, ways, 64, report_clean)
        for _ in range(12):
            start = rng.randint(0, 4 * lines) * 64
            size = rng.randint(1, 5 * lines) * 64 if rng.random() < 0.7 else rng.randint(1, 8) * 64
            write, owner, fill = rng.random() < 0.5, rng.randint(0, 3), rng.random() < 0.8
            assert_same_access(python, compiled, start, start + size, write, owner, fill)
            assert compiled.lines() == python.lines()
            assert (compiled.hit_bytes, compiled.miss_bytes, compiled.writeback_bytes) == (
                python.stats.hit_bytes,
                python.stats.miss_bytes,
                python.stats.writeback_bytes,
            )
        assert compiled.py_flush() == [astuple(e) for e in python.flush()]


def assert_same_access(
    python: LineCache, compiled, start: int, stop: int, write: bool, owner: int, fill: bool
) -> None:
    """One access through both line caches: the same misses and evictions."""
    evictions: list = []
    misses = python.access(start, stop, write=write, owner=owner, evictions=evictions, fill=fill)
    expected = (misses if fill else [], [astuple(e) for e in evictions])
    assert compiled.py_access(start, stop, write, owner, fill) == expected


def astuple(eviction) -> tuple[int, int, bool, int]:
    return (eviction.start, eviction.stop, eviction.dirty, eviction.owner)


@pytest.mark.parametrize("caches", ["range", "line"])
def test_memory_systems_agree_tile_by_tile(caches: str) -> None:
    rng = random.Random(2)
    for _ in range(300):
        ways = rng.choice([1, 2, 4])
        arguments = (
            2,
            rng.randint(1, 8) * 64 * ways,
            rng.randint(1, 30) * 64 * ways,
            rng.random() < 0.3,
            rng.random() < 0.2,
            64,
            rng.randint(1, 3),
            128,
            rng.choice([0.5, 8.0]),
            50.0,
            caches,
            ways,
            ways,
        )
        python, compiled = MemorySystem(*arguments), fast.FastMemorySystem(*arguments)
        for _ in range(20):
            tile = []
            for _ in range(rng.randint(1, 4)):
                start, size = rng.randint(0, 60) * 32, rng.randint(1, 40) * 32
                tile.append((start, start + size, rng.random() < 0.5, rng.randint(0, 5)))
            core, now = rng.randint(0, 1), rng.random() * 1000
            assert python.run_tile(core, tile, now) == compiled.run_tile(core, tile, now)
        python.flush(2000.0)
        compiled.flush(2000.0)
        assert python.source_bytes() == compiled.source_bytes()
        assert python.cache_stats() == compiled.cache_stats()
        assert python.channel_bytes() == compiled.channel_bytes()


@pytest.mark.parametrize("fidelity", ["fast", "line"])
@pytest.mark.parametrize("scheme", ["baseline", "bnff", "recompute"])
def test_whole_simulations_agree(scheme: str, fidelity: str) -> None:
    schedule = build_schedule(build_model("tiny_cnn", batch=4, image=32), scheme)
    machine = load_machine("hwconfigs/tiny.yaml")
    options = SimOptions(fidelity=fidelity)  # type: ignore[arg-type]
    python = simulate(schedule, machine, options, compiled=False)
    assert python == simulate(schedule, machine, options)


def test_the_compiled_dominance_sum_equals_numpys() -> None:
    """The analytic fidelity's Fenwick tree against the vectorised NumPy reference."""
    np = pytest.importorskip("numpy")
    from bnsim.sim.stackmodel import earlier_and_later  # noqa: PLC0415

    rng = np.random.default_rng(3)
    for count in (1, 2, 17, 1000):
        keys = rng.integers(0, count * 2, count).astype(np.int64)
        weights = rng.integers(0, 1 << 40, count).astype(np.int64)
        total = np.zeros(count, dtype=np.int64)
        fast.earlier_and_later_into(keys, weights, total)
        assert total.tolist() == earlier_and_later(keys, weights, compiled=False).tolist()
