"""A fully associative, write-back LRU cache over byte ranges: exact line LRU at the cost of ranges.

The cache holds pieces: address ranges [start, stop) with one recency, a dirty flag and an owner
(the attribution id of the last writer). An access scans its range in address order: a cached piece
is a hit and becomes most recent; a gap is a miss, inserted as most recent after evicting least
recent bytes. Within a piece, lower addresses count as older (a stream touches them first), so a
partial eviction drops a piece's low end. For accesses in whole lines this is exactly a fully
associative LRU cache of lines (tests/unit/test_cache.py checks it against one), but it costs per
range, not per line. Imports nothing from bnsim.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


class _Piece:
    """A cached range; also a node of the recency list (oldest at the head)."""

    __slots__ = ("dirty", "newer", "older", "owner", "start", "stop")

    def __init__(self, start: int, stop: int, dirty: bool, owner: int) -> None:
        self.start, self.stop, self.dirty, self.owner = start, stop, dirty, owner
        self.older: _Piece | None = None
        self.newer: _Piece | None = None


@dataclass(slots=True)
class Eviction:
    """Bytes pushed out of a cache: [start, stop), whether they were dirty, their last writer."""

    start: int
    stop: int
    dirty: bool
    owner: int


@dataclass(slots=True)
class CacheStats:
    """Counters of one cache, in bytes."""

    read_bytes: int = 0
    write_bytes: int = 0
    hit_bytes: int = 0
    miss_bytes: int = 0
    writeback_bytes: int = 0  # dirty bytes evicted


@dataclass
class RangeCache:
    """A fully associative LRU write-back cache of `capacity_bytes`, tracked as byte ranges.

    Evictions of clean bytes are reported only with `report_clean` (an inclusive LLC needs them to
    invalidate the levels above; nobody else does).
    """

    capacity_bytes: int
    report_clean: bool = True
    stats: CacheStats = field(default_factory=CacheStats)
    used_bytes: int = 0
    _oldest: _Piece | None = None
    _newest: _Piece | None = None
    _starts: list[int] = field(default_factory=list)  # sorted piece starts
    _by_start: dict[int, _Piece] = field(default_factory=dict)

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
        """Touch [start, stop); returns the missed ranges in address order.

        Args:
            start: first byte.
            stop: one past the last byte.
            write: a store (the touched bytes become dirty and owned by `owner`).
            owner: attribution id of the accessor.
            evictions: receives the bytes this access pushes out, in eviction order.
            fill: whether misses count as misses (False for lines installed from an upper level:
                lines arrive, nothing is fetched).
        """
        stats = self.stats
        if write:
            stats.write_bytes += stop - start
        else:
            stats.read_bytes += stop - start
        misses: list[tuple[int, int]] = []
        position = start
        last: _Piece | None = None
        while position < stop:
            piece = self._piece_at_or_after(position)
            if piece is not None and piece.start <= position:
                hit_stop = min(piece.stop, stop)
                stats.hit_bytes += hit_stop - position
                dirty, piece_owner = piece.dirty or write, owner if write else piece.owner
                self._cut(piece, position, hit_stop)
                last = self._add(position, hit_stop, dirty, piece_owner, last)
                position = hit_stop
                continue
            gap_stop = stop if piece is None or piece.start >= stop else piece.start
            if fill:
                stats.miss_bytes += gap_stop - position
                misses.append((position, gap_stop))
            last = self._insert(position, gap_stop, write, owner, evictions, last)
            position = gap_stop
        return misses

    def invalidate(self, start: int, stop: int) -> list[Eviction]:
        """Drop [start, stop); returns the dropped bytes (dirty ones still need writing)."""
        dropped = []
        position = start
        while position < stop:
            piece = self._piece_at_or_after(position)
            if piece is None or piece.start >= stop:
                break
            low, high = max(piece.start, position), min(piece.stop, stop)
            dropped.append(Eviction(low, high, piece.dirty, piece.owner))
            self._cut(piece, low, high)
            position = high
        return dropped

    def flush(self) -> list[Eviction]:
        """Drop everything, oldest first; dirty bytes are counted as written back."""
        dropped = []
        piece = self._oldest
        while piece is not None:
            dropped.append(Eviction(piece.start, piece.stop, piece.dirty, piece.owner))
            if piece.dirty:
                self.stats.writeback_bytes += piece.stop - piece.start
            piece = piece.newer
        self._oldest = self._newest = None
        self._starts.clear()
        self._by_start.clear()
        self.used_bytes = 0
        return dropped

    def pieces(self) -> list[tuple[int, int, bool]]:
        """(start, stop, dirty) of every cached piece, oldest first (for tests and debugging)."""
        found = []
        piece = self._oldest
        while piece is not None:
            found.append((piece.start, piece.stop, piece.dirty))
            piece = piece.newer
        return found

    # --- internals -----------------------------------------------------------------------------

    def _piece_at_or_after(self, address: int) -> _Piece | None:
        """The piece containing `address`, or else the next piece above it, or None."""
        starts = self._starts
        index = bisect.bisect_right(starts, address) - 1
        if index >= 0:
            piece = self._by_start[starts[index]]
            if piece.stop > address:
                return piece
        index += 1
        return self._by_start[starts[index]] if index < len(starts) else None

    def _insert(
        self,
        low: int,
        high: int,
        write: bool,
        owner: int,
        evictions: list[Eviction],
        last: _Piece | None,
    ) -> _Piece:
        # the front of a stream longer than the cache passes straight through: as with lines, it
        # is evicted after everything that was cached before it
        passed = max(low, high - self.capacity_bytes)
        self._make_room(high - passed, evictions)
        if passed > low:
            if write:
                evictions.append(Eviction(low, passed, True, owner))
                self.stats.writeback_bytes += passed - low
            elif self.report_clean:
                evictions.append(Eviction(low, passed, False, owner))
        return self._add(passed, high, write, owner, last)

    def _add(self, low: int, high: int, dirty: bool, owner: int, last: _Piece | None) -> _Piece:
        """Add a most recent piece, merged into `last` (this access's previous one) if adjacent."""
        self.used_bytes += high - low
        if (
            last is not None
            and last is self._newest
            and last.stop == low
            and (last.dirty == dirty and last.owner == owner)
        ):
            last.stop = high
            return last
        piece = _Piece(low, high, dirty, owner)
        self._link_newest(piece)
        bisect.insort(self._starts, low)
        self._by_start[low] = piece
        return piece

    def _cut(self, piece: _Piece, low: int, high: int) -> None:
        """Remove [low, high) from `piece`; what lies on either side keeps the piece's recency."""
        self.used_bytes -= high - low
        start, stop = piece.start, piece.stop
        if low == start and high == stop:
            self._unlink(piece)
            index = bisect.bisect_left(self._starts, start)
            del self._starts[index]
            del self._by_start[start]
        elif low == start:  # keep the top part
            index = bisect.bisect_left(self._starts, start)
            del self._starts[index]
            del self._by_start[start]
            piece.start = high
            bisect.insort(self._starts, high)
            self._by_start[high] = piece
        else:  # keep the bottom part, and the top part as a piece just younger than it
            piece.stop = low
            if high < stop:
                top = _Piece(high, stop, piece.dirty, piece.owner)
                self._link_after(top, piece)
                bisect.insort(self._starts, high)
                self._by_start[high] = top

    def _make_room(self, size: int, evictions: list[Eviction]) -> None:
        """Evict least recent bytes (the low end of the oldest piece first) until `size` fits."""
        while self.used_bytes + size > self.capacity_bytes:
            piece = self._oldest
            assert piece is not None, "cache is empty but over capacity"
            low = piece.start
            high = min(piece.stop, low + self.used_bytes + size - self.capacity_bytes)
            if piece.dirty:
                evictions.append(Eviction(low, high, True, piece.owner))
                self.stats.writeback_bytes += high - low
            elif self.report_clean:
                evictions.append(Eviction(low, high, False, piece.owner))
            self._cut(piece, low, high)

    def _link_newest(self, piece: _Piece) -> None:
        piece.older, piece.newer = self._newest, None
        if self._newest is not None:
            self._newest.newer = piece
        else:
            self._oldest = piece
        self._newest = piece

    def _link_after(self, piece: _Piece, anchor: _Piece) -> None:
        piece.older, piece.newer = anchor, anchor.newer
        if anchor.newer is not None:
            anchor.newer.older = piece
        else:
            self._newest = piece
        anchor.newer = piece

    def _unlink(self, piece: _Piece) -> None:
        if piece.older is not None:
            piece.older.newer = piece.newer
        else:
            self._oldest = piece.newer
        if piece.newer is not None:
            piece.newer.older = piece.older
        else:
            self._newest = piece.older
        piece.older = piece.newer = None
