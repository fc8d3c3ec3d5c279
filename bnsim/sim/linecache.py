"""A set-associative, write-back LRU cache of lines: the exact cache of line fidelity.

Same interface as bnsim.sim.cache.RangeCache (`access`, `invalidate`, `flush`, `stats`), so the
memory system runs either. An access walks its range line by line in address order; a line maps to
set `(address // line) % sets` (plain modulo indexing: real LLCs hash addresses over slices with
an unpublished function, see docs/model.md). Each set is an OrderedDict from line number to (dirty,
owner), least recent first. Missed and evicted lines are reported as ranges, adjacent lines merged.
This pure-Python form is the reference; bnsim.sim._fastmemory.FastLineCache is its compiled twin,
with identical results (tests/unit/test_fastmemory.py). Imports bnsim.sim.cache.
"""

from __future__ import annotations

from collections import OrderedDict

from bnsim.sim.cache import CacheStats, Eviction


class LineCache:
    """`capacity_bytes` in lines of `line` bytes, `ways` per set (ways = lines: fully associative).

    Evictions of clean lines are reported only with `report_clean` (an inclusive LLC needs them to
    invalidate the levels above).
    """

    def __init__(self, capacity_bytes: int, ways: int, line: int, report_clean: bool = True):
        lines = capacity_bytes // line
        if line <= 0 or ways <= 0 or capacity_bytes % line or lines % ways:
            raise ValueError(
                f"a cache of {capacity_bytes} B cannot have {ways} ways of {line} B lines"
            )
        self.line = line
        self.ways = ways
        self.num_sets = lines // ways
        self.report_clean = report_clean
        self.stats = CacheStats()
        self._sets: list[OrderedDict[int, tuple[bool, int]]] = [
            OrderedDict() for _ in range(self.num_sets)
        ]

    @property
    def used_bytes(self) -> int:
        """Bytes of the lines held."""
        return sum(len(entries) for entries in self._sets) * self.line

    def access(
        self,
        start: int,
        stop: int,
        *,
        write: bool,
        owner: int,
        evictions: list[Eviction],
        fill: bool = True,
    ) -> list[tuple[int, int]]:
        """Touch the lines of [start, stop) (line aligned); returns the missed ranges in order.

        Args as RangeCache.access: `write` makes the lines dirty and owned by `owner`; `evictions`
        receives what the access pushes out; `fill=False` installs lines without counting misses.
        """
        line, sets, ways, stats = self.line, self._sets, self.ways, self.stats
        num_sets = self.num_sets
        if write:
            stats.write_bytes += stop - start
        else:
            stats.read_bytes += stop - start
        misses: list[tuple[int, int]] = []
        for address in range(start, stop, line):
            number = address // line
            entries = sets[number % num_sets]
            entry = entries.get(number)
            if entry is not None:
                stats.hit_bytes += line
                entries.move_to_end(number)
                if write:
                    entries[number] = (True, owner)
                continue
            if fill:
                stats.miss_bytes += line
                if misses and misses[-1][1] == address:
                    misses[-1] = (misses[-1][0], address + line)
                else:
                    misses.append((address, address + line))
            if len(entries) == ways:
                victim, (dirty, victim_owner) = entries.popitem(last=False)
                if dirty:
                    stats.writeback_bytes += line
                if dirty or self.report_clean:
                    _push(evictions, victim * line, line, dirty, victim_owner)
            entries[number] = (write, owner)
        return misses

    def invalidate(self, start: int, stop: int) -> list[Eviction]:
        """Drop the lines of [start, stop); returns them (dirty ones still need writing)."""
        dropped: list[Eviction] = []
        line, num_sets = self.line, self.num_sets
        for number in range(start // line, -(-stop // line)):
            entry = self._sets[number % num_sets].pop(number, None)
            if entry is not None:
                _push(dropped, number * line, line, entry[0], entry[1])
        return dropped

    def flush(self) -> list[Eviction]:
        """Drop everything, set by set, least recent first; dirty bytes count as written back."""
        dropped: list[Eviction] = []
        line = self.line
        for entries in self._sets:
            for number, (dirty, owner) in entries.items():
                if dirty:
                    self.stats.writeback_bytes += line
                _push(dropped, number * line, line, dirty, owner)
            entries.clear()
        return dropped

    def lines(self) -> list[tuple[int, bool]]:
        """(line address, dirty) of every line, set by set, least recent first (for tests)."""
        return [
            (number * self.line, dirty)
            for entries in self._sets
            for number, (dirty, _) in entries.items()
        ]


def _push(found: list[Eviction], start: int, size: int, dirty: bool, owner: int) -> None:
    """Append a line to `found`, merged into the last entry when adjacent and alike."""
    if found:
        last = found[-1]
        if last.stop == start and last.dirty == dirty and last.owner == owner:
            last.stop += size
            return
    found.append(Eviction(start, start + size, dirty, owner))
