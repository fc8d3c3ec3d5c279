"""The line cache is an exact set-associative LRU write-back cache (hand cases, property tests)."""

from __future__ import annotations

import random
from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnsim.sim._memory import LineCache, RangeCache

LINE = 64

Range = tuple[int, int, bool, int]  # (start, stop, dirty, owner)


class SetLRU:
    """The obvious reference, line by line: per set an OrderedDict line -> (dirty, owner), least
    recent first; misses and evictions reported per line."""

    def __init__(self, sets: int, ways: int, report_clean: bool = True) -> None:
        self.sets: list[OrderedDict[int, tuple[bool, int]]] = [OrderedDict() for _ in range(sets)]
        self.ways = ways
        self.report_clean = report_clean
        self.hits = self.misses = self.writebacks = 0

    def access(
        self, first: int, count: int, write: bool, owner: int = 0, fill: bool = True
    ) -> tuple[list[int], list[tuple[int, bool, int]]]:
        missed: list[int] = []
        evicted: list[tuple[int, bool, int]] = []
        for line in range(first, first + count):
            entries = self.sets[line % len(self.sets)]
            if line in entries:
                self.hits += 1
                dirty, old_owner = entries.pop(line)
                entries[line] = (True, owner) if write else (dirty, old_owner)
                continue
            if fill:
                self.misses += 1
                missed.append(line)
            if len(entries) == self.ways:
                victim, (dirty, victim_owner) = entries.popitem(last=False)
                self.writebacks += dirty
                if dirty or self.report_clean:
                    evicted.append((victim, dirty, victim_owner))
            entries[line] = (write, owner)
        return missed, evicted

    def invalidate(self, first: int, count: int) -> list[tuple[int, bool, int]]:
        dropped = []
        for line in range(first, first + count):
            entry = self.sets[line % len(self.sets)].pop(line, None)
            if entry is not None:
                dropped.append((line, *entry))
        return dropped

    def flush(self) -> list[tuple[int, bool, int]]:
        dropped = []
        for entries in self.sets:
            for line, (dirty, owner) in entries.items():
                self.writebacks += dirty
                dropped.append((line, dirty, owner))
            entries.clear()
        return dropped

    def lines(self) -> list[tuple[int, bool]]:
        return [
            (line * LINE, dirty) for entries in self.sets for line, (dirty, _) in entries.items()
        ]


def test_conflicts_evict_within_a_set_only() -> None:
    """2 sets × 2 ways: lines 0, 2 and 4 all map to set 0, so the third evicts line 0 although set
    1 is empty; a fully associative cache of the same 4 lines keeps all three."""
    cache = LineCache(4 * LINE, 2, LINE)
    for line in (0, 2):
        assert cache.py_access(line * LINE, (line + 1) * LINE, True, 7)[1] == []
    misses, evictions = cache.py_access(4 * LINE, 5 * LINE, False, 1)
    assert misses == [(4 * LINE, 5 * LINE)]
    assert evictions == [(0, LINE, True, 7)]  # dirty, charged to its writer
    assert cache.lines() == [(2 * LINE, True), (4 * LINE, False)]
    assert cache.writeback_bytes == LINE
    associative = RangeCache(4 * LINE)
    for line in (0, 2, 4):
        associative.py_access(line * LINE, (line + 1) * LINE, False, 0)
    assert associative.miss_bytes == 3 * LINE
    assert associative.used_bytes == 3 * LINE


def test_a_hit_refreshes_recency_and_adjacent_misses_merge() -> None:
    cache = LineCache(4 * LINE, 2, LINE)  # sets: even lines, odd lines
    assert cache.py_access(0, 4 * LINE, False, 0)[0] == [(0, 4 * LINE)]
    cache.py_access(0, LINE, False, 0)  # line 0 is now newer than line 2
    _, evictions = cache.py_access(4 * LINE, 5 * LINE, False, 0)
    assert evictions == [(2 * LINE, 3 * LINE, False, 0)]  # line 2, the older
    assert (2 * LINE, False) not in cache.lines()
    assert cache.hit_bytes == LINE
    assert cache.miss_bytes == 5 * LINE


def test_invalidate_and_flush_return_what_they_drop() -> None:
    cache = LineCache(8 * LINE, 4, LINE)
    cache.py_access(0, 3 * LINE, True, 3)
    cache.py_access(3 * LINE, 4 * LINE, False, 4)
    assert cache.py_invalidate(LINE, 2 * LINE) == [(LINE, 2 * LINE, True, 3)]
    dropped = cache.py_flush()
    assert sorted(dropped) == [
        (0, LINE, True, 3),
        (2 * LINE, 3 * LINE, True, 3),
        (3 * LINE, 4 * LINE, False, 4),
    ]
    assert cache.lines() == []
    assert cache.used_bytes == 0
    assert cache.writeback_bytes == 2 * LINE  # the invalidated dirty line is the caller's


@pytest.mark.parametrize(("capacity", "ways"), [(3 * LINE, 2), (4 * LINE, 0), (100, 1)])
def test_impossible_geometries_are_refused(capacity: int, ways: int) -> None:
    with pytest.raises(ValueError, match="cannot have"):
        LineCache(capacity, ways, LINE)


accesses = st.lists(
    st.tuples(st.integers(0, 48), st.integers(1, 16), st.booleans()), min_size=1, max_size=50
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 8), st.integers(1, 6), st.booleans(), accesses)
def test_line_cache_equals_the_set_lru_reference(
    sets: int, ways: int, report_clean: bool, sequence
) -> None:
    cache = LineCache(sets * ways * LINE, ways, LINE, report_clean)
    reference = SetLRU(sets, ways, report_clean)
    for index, (first, count, write) in enumerate(sequence):
        assert_same_access(cache, reference, first, count, write, owner=index % 3, fill=True)


@pytest.mark.parametrize("spread", [False, True])
def test_line_cache_operations_equal_the_reference_in_random_order(spread: bool) -> None:
    """Accesses (with and without fill), invalidations and flushes, and streams of two to five
    times the cache's lines, which take the compiled cache's shortcut (exact part, then victims
    and final state per set), over whatever the cache held, dirty lines of other owners too.
    `spread`: the lines lie around several granules of the cache's held-line counts (1024 line
    numbers each), which an invalidation skips where the cache holds nothing."""
    rng = random.Random(3)
    for _ in range(600):
        ways, sets, report_clean = (
            rng.randint(1, 9),
            rng.choice([1, 2, 3, 4, 8]),
            rng.random() < 0.5,
        )
        lines = ways * sets
        cache = LineCache(lines * LINE, ways, LINE, report_clean)
        reference = SetLRU(sets, ways, report_clean)
        for _ in range(20):
            first = rng.randint(0, 4 * lines)
            if spread:
                first += rng.choice([0, 1000, 2040, 70_000])
            count = rng.randint(1, 5 * lines) if rng.random() < 0.3 else rng.randint(1, 20)
            operation = rng.random()
            if operation < 0.8:
                write, owner, fill = rng.random() < 0.5, rng.randint(0, 5), rng.random() < 0.8
                assert_same_access(cache, reference, first, count, write, owner, fill)
            elif operation < 0.95:
                dropped = cache.py_invalidate(first * LINE, (first + count) * LINE)
                assert per_line(dropped) == reference.invalidate(first, count)
            else:
                assert per_line(cache.py_flush()) == reference.flush()
            assert cache.lines() == reference.lines()


def assert_same_access(
    cache: LineCache, reference: SetLRU, first: int, count: int, write: bool, owner: int, fill: bool
) -> None:
    """One access through the cache and the reference: the same misses, evictions, counters."""
    misses, evictions = cache.py_access(first * LINE, (first + count) * LINE, write, owner, fill)
    expected_misses, expected_evictions = reference.access(first, count, write, owner, fill)
    assert lines_of(misses) == expected_misses
    assert per_line(evictions) == expected_evictions
    assert (cache.hit_bytes, cache.miss_bytes, cache.writeback_bytes) == (
        reference.hits * LINE,
        reference.misses * LINE,
        reference.writebacks * LINE,
    )


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 20), accesses, st.lists(st.integers(0, 3), min_size=50, max_size=50))
def test_fully_associative_line_cache_equals_the_range_cache(lines: int, sequence, owners) -> None:
    """One set of all the ways is the range cache, line for line: misses, evictions (dirty, owner,
    order), counters, contents, and the wait for lines still arriving."""
    line_cache = LineCache(lines * LINE, lines, LINE)
    range_cache = RangeCache(lines * LINE)
    for cache in (line_cache, range_cache):
        cache.tracks_arrival = True
    for step, ((first, count, write), owner) in enumerate(zip(sequence, owners, strict=False)):
        start, stop = first * LINE, (first + count) * LINE
        for cache in (line_cache, range_cache):
            cache.begin_step(10.0 * step)
        fill = owner != 3  # owner 3 installs without reading
        by_line = line_cache.py_access(start, stop, write, owner, fill)
        by_range = range_cache.py_access(start, stop, write, owner, fill)
        assert line_cache.wait == range_cache.wait  # fills of earlier steps arrive 25 cycles late
        for cache in (line_cache, range_cache):
            cache.settle(10.0 * step + 25.0)
        assert lines_of(by_line[0]) == lines_of(by_range[0])
        assert per_line(by_line[1]) == per_line(by_range[1])
        for counter in ("read_bytes", "write_bytes", "hit_bytes", "miss_bytes", "writeback_bytes"):
            assert getattr(line_cache, counter) == getattr(range_cache, counter)
        assert [a for a, _ in line_cache.lines()] == [
            line * LINE
            for a, b, _ in range_cache.contents()
            for line in range(a // LINE, b // LINE)
        ]
    assert per_line(line_cache.py_flush()) == per_line(range_cache.py_flush())


def lines_of(ranges: list[tuple[int, int]]) -> list[int]:
    return [line for start, stop in ranges for line in range(start // LINE, stop // LINE)]


def per_line(evictions: list[Range]) -> list[tuple[int, bool, int]]:
    return [
        (line, dirty, owner)
        for start, stop, dirty, owner in evictions
        for line in range(start // LINE, stop // LINE)
    ]
