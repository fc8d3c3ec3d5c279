"""The range cache is exactly a fully associative LRU write-back cache of lines (property test)."""

from __future__ import annotations

from collections import OrderedDict

from hypothesis import given, settings
from hypothesis import strategies as st

from bnsim.sim._memory import RangeCache

LINE = 64


class LineLRU:
    """The obvious reference: an OrderedDict of lines, oldest first; value = (dirty, owner)."""

    def __init__(self, capacity_lines: int) -> None:
        self.capacity = capacity_lines
        self.lines: OrderedDict[int, tuple[bool, int]] = OrderedDict()
        self.writebacks = 0

    def access(
        self, start: int, stop: int, write: bool, owner: int, fill: bool
    ) -> tuple[int, list[tuple[int, bool, int]]]:
        """(missed lines, evicted (line, dirty, owner) in order)."""
        misses, evicted = 0, []
        for line in range(start // LINE, stop // LINE):
            if line in self.lines:
                dirty, old_owner = self.lines.pop(line)
                self.lines[line] = (True, owner) if write else (dirty, old_owner)
                continue
            misses += fill
            if len(self.lines) == self.capacity:
                victim, (dirty, victim_owner) = self.lines.popitem(last=False)
                self.writebacks += dirty
                evicted.append((victim, dirty, victim_owner))
            self.lines[line] = (write, owner)
        return misses, evicted


accesses = st.lists(
    st.tuples(
        st.integers(0, 40), st.integers(1, 24), st.booleans(), st.integers(0, 3), st.booleans()
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 20), accesses)
def test_range_cache_equals_line_lru(capacity_lines: int, sequence) -> None:
    """Misses, evictions (dirty, owner, order), write-backs, contents and recency, line by line;
    an access without fill (an allocating store) reports no misses."""
    cache = RangeCache(capacity_lines * LINE)
    reference = LineLRU(capacity_lines)
    for first_line, num_lines, write, owner, fill in sequence:
        start, stop = first_line * LINE, (first_line + num_lines) * LINE
        misses, evictions = cache.py_access(start, stop, write, owner, fill)
        expected_misses, expected_evictions = reference.access(start, stop, write, owner, fill)
        assert sum(b - a for a, b in misses) // LINE == expected_misses
        assert [
            (line, dirty, who)
            for a, b, dirty, who in evictions
            for line in range(a // LINE, b // LINE)
        ] == expected_evictions
        assert cache.writeback_bytes == reference.writebacks * LINE
        held = cache.contents()
        dirty = {line for a, b, d in held if d for line in range(a // LINE, b // LINE)}
        assert dirty == {line for line, (d, _) in reference.lines.items() if d}
        # recency order, oldest first, must match line by line
        order = [line for a, b, _ in held for line in range(a // LINE, b // LINE)]
        assert order == list(reference.lines)
        assert cache.used_bytes == len(reference.lines) * LINE


def test_a_stream_larger_than_the_cache_keeps_its_tail() -> None:
    cache = RangeCache(1000)
    misses, evictions = cache.py_access(0, 5000, True, 7)
    assert misses == [(0, 5000)]
    assert cache.contents() == [(4000, 5000, True)]
    assert evictions == [(0, 4000, True, 7)]
    assert cache.writeback_bytes == 4000


def test_rereading_a_stream_that_no_longer_fits_misses_entirely() -> None:
    """LRU's streaming pathology: 1.5× the capacity read twice misses every byte both times."""
    cache = RangeCache(1000)
    for _ in range(2):
        misses, _ = cache.py_access(0, 1500, False, 0)
        assert sum(b - a for a, b in misses) == 1500


def test_invalidate_and_flush_report_dirty_bytes() -> None:
    cache = RangeCache(1000)
    cache.py_access(0, 100, True, 1)
    cache.py_access(100, 300, False, 2)
    assert cache.py_invalidate(50, 150) == [(50, 100, True, 1), (100, 150, False, 2)]
    assert cache.contents() == [(0, 50, True), (150, 300, False)]
    assert cache.py_flush() == [(0, 50, True, 1), (150, 300, False, 2)]
    assert cache.writeback_bytes == 50
    assert cache.used_bytes == 0
