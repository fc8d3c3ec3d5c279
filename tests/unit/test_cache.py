"""The range cache is exactly a fully associative LRU write-back cache of lines (property test)."""

from __future__ import annotations

from collections import OrderedDict

from hypothesis import given, settings
from hypothesis import strategies as st

from bnsim.sim.cache import Eviction, RangeCache

LINE = 64


class LineLRU:
    """The obvious reference: an OrderedDict of lines, oldest first; value = dirty."""

    def __init__(self, capacity_lines: int) -> None:
        self.capacity = capacity_lines
        self.lines: OrderedDict[int, bool] = OrderedDict()
        self.writebacks = 0

    def access(self, start: int, stop: int, write: bool) -> int:
        misses = 0
        for line in range(start // LINE, stop // LINE):
            if line in self.lines:
                dirty = self.lines.pop(line)
            else:
                misses += 1
                dirty = False
                if len(self.lines) == self.capacity:
                    _, evicted_dirty = self.lines.popitem(last=False)
                    self.writebacks += evicted_dirty
            self.lines[line] = dirty or write
        return misses


accesses = st.lists(
    st.tuples(st.integers(0, 40), st.integers(1, 24), st.booleans()), min_size=1, max_size=60
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 20), accesses)
def test_range_cache_equals_line_lru(capacity_lines: int, sequence) -> None:
    cache = RangeCache(capacity_bytes=capacity_lines * LINE)
    reference = LineLRU(capacity_lines)
    for first_line, num_lines, write in sequence:
        start, stop = first_line * LINE, (first_line + num_lines) * LINE
        evictions: list[Eviction] = []
        misses = cache.access(start, stop, write=write, owner=0, evictions=evictions)
        missed_lines = sum(b - a for a, b in misses) // LINE
        assert missed_lines == reference.access(start, stop, write)
        assert cache.stats.writeback_bytes == reference.writebacks * LINE
        cached = {line for a, b, _ in cache.pieces() for line in range(a // LINE, b // LINE)}
        assert cached == set(reference.lines)
        dirty = {line for a, b, d in cache.pieces() if d for line in range(a // LINE, b // LINE)}
        assert dirty == {line for line, d in reference.lines.items() if d}
        # recency order, oldest first, must match line by line
        order = [line for a, b, _ in cache.pieces() for line in range(a // LINE, b // LINE)]
        assert order == list(reference.lines)
        assert cache.used_bytes == len(reference.lines) * LINE


def test_a_stream_larger_than_the_cache_keeps_its_tail() -> None:
    cache = RangeCache(capacity_bytes=1000)
    evictions: list[Eviction] = []
    misses = cache.access(0, 5000, write=True, owner=7, evictions=evictions)
    assert misses == [(0, 5000)]
    assert cache.pieces() == [(4000, 5000, True)]
    assert evictions == [Eviction(0, 4000, True, 7)]
    assert cache.stats.writeback_bytes == 4000


def test_rereading_a_stream_that_no_longer_fits_misses_entirely() -> None:
    """LRU's streaming pathology: 1.5× the capacity read twice misses every byte both times."""
    cache = RangeCache(capacity_bytes=1000)
    for _ in range(2):
        misses = cache.access(0, 1500, write=False, owner=0, evictions=[])
        assert sum(b - a for a, b in misses) == 1500


def test_invalidate_and_flush_report_dirty_bytes() -> None:
    cache = RangeCache(capacity_bytes=1000)
    cache.access(0, 100, write=True, owner=1, evictions=[])
    cache.access(100, 300, write=False, owner=2, evictions=[])
    assert cache.invalidate(50, 150) == [Eviction(50, 100, True, 1), Eviction(100, 150, False, 2)]
    assert cache.pieces() == [(0, 50, True), (150, 300, False)]
    flushed = cache.flush()
    assert [(e.start, e.stop, e.dirty) for e in flushed] == [(0, 50, True), (150, 300, False)]
    assert cache.stats.writeback_bytes == 50
    assert cache.used_bytes == 0
