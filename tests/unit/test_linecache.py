"""The line cache is an exact set-associative LRU write-back cache (hand cases, property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnsim.sim.cache import Eviction, RangeCache
from bnsim.sim.linecache import LineCache

LINE = 64


class SetLRU:
    """The obvious reference: per set a list of [line, dirty], least recent first."""

    def __init__(self, sets: int, ways: int) -> None:
        self.sets: list[list[list[int | bool]]] = [[] for _ in range(sets)]
        self.ways = ways
        self.misses = 0
        self.writebacks = 0

    def access(self, line: int, write: bool) -> None:
        entries = self.sets[line % len(self.sets)]
        for entry in entries:
            if entry[0] == line:
                entries.remove(entry)
                entries.append([line, bool(entry[1]) or write])
                return
        self.misses += 1
        if len(entries) == self.ways:
            _, dirty = entries.pop(0)
            self.writebacks += bool(dirty)
        entries.append([line, write])


def lines_of(ranges: list[tuple[int, int]]) -> list[int]:
    return [line for start, stop in ranges for line in range(start // LINE, stop // LINE)]


def test_conflicts_evict_within_a_set_only() -> None:
    """2 sets × 2 ways: lines 0, 2 and 4 all map to set 0, so the third evicts line 0 although set
    1 is empty; a fully associative cache of the same 4 lines keeps all three."""
    cache = LineCache(4 * LINE, ways=2, line=LINE)
    evictions: list[Eviction] = []
    for line in (0, 2):
        cache.access(line * LINE, (line + 1) * LINE, write=True, owner=7, evictions=evictions)
    assert evictions == []
    misses = cache.access(4 * LINE, 5 * LINE, write=False, owner=1, evictions=evictions)
    assert misses == [(4 * LINE, 5 * LINE)]
    assert evictions == [Eviction(0, LINE, True, 7)]  # dirty, charged to its writer
    assert cache.lines() == [(2 * LINE, True), (4 * LINE, False)]
    assert cache.stats.writeback_bytes == LINE
    associative = RangeCache(capacity_bytes=4 * LINE)
    for line in (0, 2, 4):
        associative.access(line * LINE, (line + 1) * LINE, write=False, owner=0, evictions=[])
    assert associative.stats.miss_bytes == 3 * LINE
    assert associative.used_bytes == 3 * LINE


def test_a_hit_refreshes_recency_and_adjacent_misses_merge() -> None:
    cache = LineCache(4 * LINE, ways=2, line=LINE)  # sets: even lines, odd lines
    assert cache.access(0, 4 * LINE, write=False, owner=0, evictions=[]) == [(0, 4 * LINE)]
    cache.access(0, LINE, write=False, owner=0, evictions=[])  # line 0 is now newer than line 2
    evictions: list[Eviction] = []
    cache.access(4 * LINE, 5 * LINE, write=False, owner=0, evictions=evictions)
    assert [(e.start, e.dirty) for e in evictions] == [(2 * LINE, False)]  # line 2, the older
    assert (2 * LINE, False) not in cache.lines()
    assert cache.stats.hit_bytes == LINE
    assert cache.stats.miss_bytes == 5 * LINE


def test_invalidate_and_flush_return_what_they_drop() -> None:
    cache = LineCache(8 * LINE, ways=4, line=LINE)
    cache.access(0, 3 * LINE, write=True, owner=3, evictions=[])
    cache.access(3 * LINE, 4 * LINE, write=False, owner=4, evictions=[])
    assert cache.invalidate(LINE, 2 * LINE) == [Eviction(LINE, 2 * LINE, True, 3)]
    dropped = cache.flush()
    assert sorted((e.start, e.stop, e.dirty) for e in dropped) == [
        (0, LINE, True),
        (2 * LINE, 3 * LINE, True),
        (3 * LINE, 4 * LINE, False),
    ]
    assert cache.lines() == []
    assert cache.used_bytes == 0
    assert cache.stats.writeback_bytes == 2 * LINE  # the invalidated dirty line is the caller's


@pytest.mark.parametrize(("capacity", "ways"), [(3 * LINE, 2), (4 * LINE, 0), (100, 1)])
def test_impossible_geometries_are_refused(capacity: int, ways: int) -> None:
    with pytest.raises(ValueError, match="cannot have"):
        LineCache(capacity, ways=ways, line=LINE)


accesses = st.lists(
    st.tuples(st.integers(0, 48), st.integers(1, 16), st.booleans()), min_size=1, max_size=50
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 8), st.integers(1, 6), accesses)
def test_line_cache_equals_the_set_lru_reference(sets: int, ways: int, sequence) -> None:
    cache = LineCache(sets * ways * LINE, ways=ways, line=LINE)
    reference = SetLRU(sets, ways)
    for first, count, write in sequence:
        evictions: list[Eviction] = []
        misses = cache.access(
            first * LINE, (first + count) * LINE, write=write, owner=0, evictions=evictions
        )
        before = reference.misses
        for line in range(first, first + count):
            reference.access(line, write)
        assert len(lines_of(misses)) == reference.misses - before
        assert cache.stats.writeback_bytes == reference.writebacks * LINE
        held = sorted(line for line, _ in cache.lines())
        assert held == sorted(entry[0] * LINE for s in reference.sets for entry in s)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 20), accesses, st.lists(st.integers(0, 3), min_size=50, max_size=50))
def test_fully_associative_line_cache_equals_the_range_cache(lines: int, sequence, owners) -> None:
    """One set of all the ways is the range cache, line for line: misses, evictions (dirty, owner,
    order), counters and contents."""
    line_cache = LineCache(lines * LINE, ways=lines, line=LINE)
    range_cache = RangeCache(capacity_bytes=lines * LINE)
    for (first, count, write), owner in zip(sequence, owners, strict=False):
        start, stop = first * LINE, (first + count) * LINE
        by_line: list[Eviction] = []
        by_range: list[Eviction] = []
        assert lines_of(
            line_cache.access(start, stop, write=write, owner=owner, evictions=by_line)
        ) == lines_of(range_cache.access(start, stop, write=write, owner=owner, evictions=by_range))
        assert per_line(by_line) == per_line(by_range)
        assert line_cache.stats == range_cache.stats
        assert [a for a, _ in line_cache.lines()] == [
            line * LINE for a, b, _ in range_cache.pieces() for line in range(a // LINE, b // LINE)
        ]
    assert per_line(line_cache.flush()) == per_line(range_cache.flush())


def per_line(evictions: list[Eviction]) -> list[tuple[int, bool, int]]:
    return [
        (line, e.dirty, e.owner)
        for e in evictions
        for line in range(e.start // LINE, e.stop // LINE)
    ]
