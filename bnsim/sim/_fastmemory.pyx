# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled twin of bnsim.sim.memory.MemorySystem and bnsim.sim.cache.RangeCache (same results, faster).

Built at install time when a C compiler is present; bnsim falls back to the pure-Python classes otherwise.
tests/unit/test_fastmemory.py checks that both give identical numbers.
"""

from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memmove

ctypedef long long i64


cdef struct Piece:
    i64 start
    i64 stop
    int owner
    int older
    int newer
    char dirty
    char used


cdef struct Eviction:
    i64 start
    i64 stop
    int owner
    char dirty


cdef class _Evictions:
    """A growable buffer of evictions."""
    cdef Eviction* items
    cdef int count
    cdef int capacity

    def __cinit__(self):
        self.capacity = 64
        self.count = 0
        self.items = <Eviction*> malloc(self.capacity * sizeof(Eviction))

    def __dealloc__(self):
        free(self.items)

    cdef inline void push(self, i64 start, i64 stop, char dirty, int owner):
        if self.count == self.capacity:
            self.capacity *= 2
            self.items = <Eviction*> realloc(self.items, self.capacity * sizeof(Eviction))
        self.items[self.count].start = start
        self.items[self.count].stop = stop
        self.items[self.count].dirty = dirty
        self.items[self.count].owner = owner
        self.count += 1


cdef class FastRangeCache:
    """RangeCache in C: pieces in an array, a recency list, an index sorted by start address."""
    cdef Piece* pieces
    cdef int* order  # piece ids sorted by start
    cdef int num_pieces
    cdef int capacity_pieces
    cdef int free_head
    cdef int oldest
    cdef int newest
    cdef public i64 capacity_bytes
    cdef public i64 used_bytes
    cdef public bint report_clean
    cdef public i64 read_bytes, write_bytes, hit_bytes, miss_bytes, writeback_bytes

    def __cinit__(self, i64 capacity_bytes, bint report_clean=True):
        self.capacity_bytes = capacity_bytes
        self.report_clean = report_clean
        self.capacity_pieces = 64
        self.pieces = <Piece*> malloc(self.capacity_pieces * sizeof(Piece))
        self.order = <int*> malloc(self.capacity_pieces * sizeof(int))
        self._reset()

    def __dealloc__(self):
        free(self.pieces)
        free(self.order)

    cdef void _reset(self):
        cdef int i
        self.num_pieces = 0
        self.oldest = -1
        self.newest = -1
        self.used_bytes = 0
        for i in range(self.capacity_pieces):
            self.pieces[i].used = 0
            self.pieces[i].newer = i + 1 if i + 1 < self.capacity_pieces else -1
        self.free_head = 0

    cdef int _new_piece(self, i64 start, i64 stop, char dirty, int owner):
        cdef int i, old
        if self.free_head < 0:
            old = self.capacity_pieces
            self.capacity_pieces *= 2
            self.pieces = <Piece*> realloc(self.pieces, self.capacity_pieces * sizeof(Piece))
            self.order = <int*> realloc(self.order, self.capacity_pieces * sizeof(int))
            for i in range(old, self.capacity_pieces):
                self.pieces[i].used = 0
                self.pieces[i].newer = i + 1 if i + 1 < self.capacity_pieces else -1
            self.free_head = old
        i = self.free_head
        self.free_head = self.pieces[i].newer
        self.pieces[i].start = start
        self.pieces[i].stop = stop
        self.pieces[i].dirty = dirty
        self.pieces[i].owner = owner
        self.pieces[i].older = -1
        self.pieces[i].newer = -1
        self.pieces[i].used = 1
        return i

    cdef void _free_piece(self, int i):
        self.pieces[i].used = 0
        self.pieces[i].newer = self.free_head
        self.free_head = i

    # --- sorted index ---------------------------------------------------------------------------

    cdef int _index_right(self, i64 address):
        """Number of pieces with start <= address."""
        cdef int low = 0, high = self.num_pieces, mid
        while low < high:
            mid = (low + high) >> 1
            if self.pieces[self.order[mid]].start <= address:
                low = mid + 1
            else:
                high = mid
        return low

    cdef void _index_insert(self, int piece):
        cdef int position = self._index_right(self.pieces[piece].start)
        memmove(&self.order[position + 1], &self.order[position],
                (self.num_pieces - position) * sizeof(int))
        self.order[position] = piece
        self.num_pieces += 1

    cdef void _index_remove(self, int piece):
        cdef int position = self._index_right(self.pieces[piece].start) - 1
        while self.order[position] != piece:
            position -= 1
        memmove(&self.order[position], &self.order[position + 1],
                (self.num_pieces - position - 1) * sizeof(int))
        self.num_pieces -= 1

    cdef int _piece_at_or_after(self, i64 address):
        cdef int index = self._index_right(address) - 1
        cdef int piece
        if index >= 0:
            piece = self.order[index]
            if self.pieces[piece].stop > address:
                return piece
        index += 1
        return self.order[index] if index < self.num_pieces else -1

    # --- recency list ---------------------------------------------------------------------------

    cdef void _link_newest(self, int piece):
        self.pieces[piece].older = self.newest
        self.pieces[piece].newer = -1
        if self.newest >= 0:
            self.pieces[self.newest].newer = piece
        else:
            self.oldest = piece
        self.newest = piece

    cdef void _link_after(self, int piece, int anchor):
        cdef int after = self.pieces[anchor].newer
        self.pieces[piece].older = anchor
        self.pieces[piece].newer = after
        if after >= 0:
            self.pieces[after].older = piece
        else:
            self.newest = piece
        self.pieces[anchor].newer = piece

    cdef void _unlink(self, int piece):
        cdef int older = self.pieces[piece].older, newer = self.pieces[piece].newer
        if older >= 0:
            self.pieces[older].newer = newer
        else:
            self.oldest = newer
        if newer >= 0:
            self.pieces[newer].older = older
        else:
            self.newest = older

    # --- operations -----------------------------------------------------------------------------

    cdef void _cut(self, int piece, i64 low, i64 high):
        cdef i64 start = self.pieces[piece].start, stop = self.pieces[piece].stop
        cdef int top
        self.used_bytes -= high - low
        if low == start and high == stop:
            self._unlink(piece)
            self._index_remove(piece)
            self._free_piece(piece)
        elif low == start:
            self._index_remove(piece)
            self.pieces[piece].start = high
            self._index_insert(piece)
        else:
            self.pieces[piece].stop = low
            if high < stop:
                top = self._new_piece(high, stop, self.pieces[piece].dirty, self.pieces[piece].owner)
                self._link_after(top, piece)
                self._index_insert(top)

    cdef int _add(self, i64 low, i64 high, char dirty, int owner, int last):
        cdef int piece
        self.used_bytes += high - low
        if last >= 0 and last == self.newest and self.pieces[last].used and \
                self.pieces[last].stop == low and self.pieces[last].dirty == dirty and \
                self.pieces[last].owner == owner:
            self.pieces[last].stop = high
            return last
        piece = self._new_piece(low, high, dirty, owner)
        self._link_newest(piece)
        self._index_insert(piece)
        return piece

    cdef void _make_room(self, i64 size, _Evictions evictions):
        cdef int piece
        cdef i64 low, high
        while self.used_bytes + size > self.capacity_bytes:
            piece = self.oldest
            low = self.pieces[piece].start
            high = self.pieces[piece].stop
            if high > low + self.used_bytes + size - self.capacity_bytes:
                high = low + self.used_bytes + size - self.capacity_bytes
            if self.pieces[piece].dirty:
                evictions.push(low, high, 1, self.pieces[piece].owner)
                self.writeback_bytes += high - low
            elif self.report_clean:
                evictions.push(low, high, 0, self.pieces[piece].owner)
            self._cut(piece, low, high)

    cdef int _insert(self, i64 low, i64 high, char write, int owner, _Evictions evictions, int last):
        cdef i64 passed
        if high - low > self.capacity_bytes:
            passed = high - self.capacity_bytes
            if write:
                evictions.push(low, passed, 1, owner)
                self.writeback_bytes += passed - low
            low = passed
        self._make_room(high - low, evictions)
        return self._add(low, high, write, owner, last)

    cdef i64 access(self, i64 start, i64 stop, char write, int owner, _Evictions evictions,
                    bint fill, _Evictions misses):
        """Touch [start, stop); missed ranges go to `misses` (as non-dirty entries)."""
        cdef i64 position = start, hit_stop, gap_stop, missed = 0
        cdef int piece, last = -1, piece_owner
        cdef char dirty
        if write:
            self.write_bytes += stop - start
        else:
            self.read_bytes += stop - start
        while position < stop:
            piece = self._piece_at_or_after(position)
            if piece >= 0 and self.pieces[piece].start <= position:
                hit_stop = self.pieces[piece].stop
                if hit_stop > stop:
                    hit_stop = stop
                self.hit_bytes += hit_stop - position
                dirty = self.pieces[piece].dirty or write
                piece_owner = owner if write else self.pieces[piece].owner
                self._cut(piece, position, hit_stop)
                last = self._add(position, hit_stop, dirty, piece_owner, last)
                position = hit_stop
                continue
            if piece < 0 or self.pieces[piece].start >= stop:
                gap_stop = stop
            else:
                gap_stop = self.pieces[piece].start
            if fill:
                self.miss_bytes += gap_stop - position
                missed += gap_stop - position
                if misses is not None:
                    misses.push(position, gap_stop, 0, owner)
            last = self._insert(position, gap_stop, write, owner, evictions, last)
            position = gap_stop
        return missed

    cdef void invalidate(self, i64 start, i64 stop, _Evictions dropped):
        cdef i64 position = start, low, high
        cdef int piece
        while position < stop:
            piece = self._piece_at_or_after(position)
            if piece < 0 or self.pieces[piece].start >= stop:
                break
            low = self.pieces[piece].start if self.pieces[piece].start > position else position
            high = self.pieces[piece].stop if self.pieces[piece].stop < stop else stop
            dropped.push(low, high, self.pieces[piece].dirty, self.pieces[piece].owner)
            self._cut(piece, low, high)
            position = high

    cdef void flush(self, _Evictions dropped):
        cdef int piece = self.oldest
        while piece >= 0:
            dropped.push(self.pieces[piece].start, self.pieces[piece].stop,
                         self.pieces[piece].dirty, self.pieces[piece].owner)
            if self.pieces[piece].dirty:
                self.writeback_bytes += self.pieces[piece].stop - self.pieces[piece].start
            piece = self.pieces[piece].newer
        self._reset()

    # --- Python-visible helpers for tests -------------------------------------------------------

    def py_access(self, i64 start, i64 stop, bint write, int owner, bint fill=True):
        """(misses, evictions) as Python lists, like RangeCache.access."""
        cdef _Evictions evictions = _Evictions()
        cdef _Evictions misses = _Evictions()
        cdef int i
        self.access(start, stop, write, owner, evictions, fill, misses)
        return ([(misses.items[i].start, misses.items[i].stop) for i in range(misses.count)],
                [(evictions.items[i].start, evictions.items[i].stop, bool(evictions.items[i].dirty),
                  evictions.items[i].owner) for i in range(evictions.count)])

    def pieces_list(self):
        """(start, stop, dirty) of every piece, oldest first."""
        found = []
        cdef int piece = self.oldest
        while piece >= 0:
            found.append((self.pieces[piece].start, self.pieces[piece].stop,
                          bool(self.pieces[piece].dirty)))
            piece = self.pieces[piece].newer
        return found


cdef class FastMemorySystem:
    """MemorySystem in C; `run_tile` takes a tile's access list at once."""
    cdef list private
    cdef FastRangeCache llc
    cdef bint inclusive
    cdef bint nontemporal
    cdef i64 line
    cdef int channels
    cdef i64 interleave
    cdef i64 stride
    cdef i64* reads_by_source
    cdef i64* writes_by_source
    cdef int sources_capacity
    cdef double* channel_totals
    cdef double* channel_free
    cdef double bytes_per_cycle, latency_cycles
    cdef double* tile_reads
    cdef double* tile_writes
    cdef double spread_reads, spread_writes
    cdef i64 llc_hits, dram_reads, dram_writes
    cdef _Evictions access_evictions, access_misses, fill_evictions, fill_misses
    cdef _Evictions install_evictions, dropped

    def __cinit__(self, int cores, i64 private_bytes, i64 llc_bytes, bint inclusive,
                  bint nontemporal, i64 line, int channels, i64 interleave, double bytes_per_cycle,
                  double latency_cycles):
        cdef int i
        self.private = [FastRangeCache(private_bytes, False) for i in range(cores)]
        self.llc = FastRangeCache(llc_bytes, inclusive)
        self.inclusive = inclusive
        self.nontemporal = nontemporal
        self.line = line
        self.channels = channels
        self.interleave = interleave
        self.stride = interleave * channels
        self.sources_capacity = 1024
        self.reads_by_source = <i64*> malloc(self.sources_capacity * sizeof(i64))
        self.writes_by_source = <i64*> malloc(self.sources_capacity * sizeof(i64))
        for i in range(self.sources_capacity):
            self.reads_by_source[i] = 0
            self.writes_by_source[i] = 0
        self.channel_totals = <double*> malloc(channels * sizeof(double))
        self.channel_free = <double*> malloc(channels * sizeof(double))
        self.bytes_per_cycle = bytes_per_cycle
        self.latency_cycles = latency_cycles
        self.tile_reads = <double*> malloc(channels * sizeof(double))
        self.tile_writes = <double*> malloc(channels * sizeof(double))
        for i in range(channels):
            self.channel_totals[i] = 0
            self.channel_free[i] = 0
        # reused buffers, one per call depth (no call below re-enters one above)
        self.access_evictions = _Evictions()
        self.access_misses = _Evictions()
        self.fill_evictions = _Evictions()
        self.fill_misses = _Evictions()
        self.install_evictions = _Evictions()
        self.dropped = _Evictions()

    def __dealloc__(self):
        free(self.reads_by_source)
        free(self.writes_by_source)
        free(self.channel_totals)
        free(self.channel_free)
        free(self.tile_reads)
        free(self.tile_writes)

    cdef void _grow_sources(self, int source):
        cdef int old = self.sources_capacity, i
        while source >= self.sources_capacity:
            self.sources_capacity *= 2
        self.reads_by_source = <i64*> realloc(self.reads_by_source, self.sources_capacity * sizeof(i64))
        self.writes_by_source = <i64*> realloc(self.writes_by_source,
                                                self.sources_capacity * sizeof(i64))
        for i in range(old, self.sources_capacity):
            self.reads_by_source[i] = 0
            self.writes_by_source[i] = 0

    cdef void _map(self, i64 low, i64 high, double* per_channel):
        cdef i64 chunk_end
        while low < high:
            chunk_end = (low // self.interleave + 1) * self.interleave
            if chunk_end > high:
                chunk_end = high
            per_channel[(low // self.interleave) % self.channels] += chunk_end - low
            low = chunk_end

    cdef void _dram_read(self, i64 low, i64 high, int source):
        if source >= self.sources_capacity:
            self._grow_sources(source)
        self.reads_by_source[source] += high - low
        self.dram_reads += high - low
        if high - low >= self.stride:
            self.spread_reads += high - low
        else:
            self._map(low, high, self.tile_reads)

    cdef void _dram_write(self, i64 low, i64 high, int source):
        if source >= self.sources_capacity:
            self._grow_sources(source)
        self.writes_by_source[source] += high - low
        self.dram_writes += high - low
        if high - low >= self.stride:
            self.spread_writes += high - low
        else:
            self._map(low, high, self.tile_writes)

    cdef void _handle_llc_evictions(self, _Evictions evictions):
        cdef int i, j, k
        cdef FastRangeCache cache
        cdef _Evictions dropped = self.dropped
        for i in range(evictions.count):
            if evictions.items[i].dirty:
                self._dram_write(evictions.items[i].start, evictions.items[i].stop,
                                 evictions.items[i].owner)
            if self.inclusive:
                for k in range(len(self.private)):
                    cache = <FastRangeCache> self.private[k]
                    dropped.count = 0
                    cache.invalidate(evictions.items[i].start, evictions.items[i].stop, dropped)
                    for j in range(dropped.count):
                        if dropped.items[j].dirty:
                            self._dram_write(dropped.items[j].start, dropped.items[j].stop,
                                             dropped.items[j].owner)

    cdef void _install(self, i64 start, i64 stop, int owner):
        cdef _Evictions evictions = self.install_evictions
        evictions.count = 0
        self.llc.access(start, stop, 1, owner, evictions, False, None)
        self._handle_llc_evictions(evictions)

    cdef void _fill(self, i64 low, i64 high, int source):
        cdef _Evictions evictions = self.fill_evictions
        cdef _Evictions misses = self.fill_misses
        cdef i64 missed
        evictions.count = 0
        misses.count = 0
        cdef int i
        missed = self.llc.access(low, high, 0, source, evictions, True, misses)
        for i in range(misses.count):
            self._dram_read(misses.items[i].start, misses.items[i].stop, source)
        self.llc_hits += high - low - missed
        self._handle_llc_evictions(evictions)

    cdef void _access(self, int core, i64 start, i64 stop, char write, int source):
        cdef FastRangeCache cache = <FastRangeCache> self.private[core]
        cdef _Evictions evictions = self.access_evictions
        cdef _Evictions misses = self.access_misses
        cdef int i
        cdef _Evictions dropped = self.dropped
        evictions.count = 0
        misses.count = 0
        start = start // self.line * self.line
        stop = (stop + self.line - 1) // self.line * self.line
        if write and self.nontemporal:
            for i in range(len(self.private)):
                dropped.count = 0
                (<FastRangeCache> self.private[i]).invalidate(start, stop, dropped)
            dropped.count = 0
            self.llc.invalidate(start, stop, dropped)
            self._dram_write(start, stop, source)
            return
        cache.access(start, stop, write, source, evictions, True, misses)
        for i in range(evictions.count):
            if evictions.items[i].dirty:
                self._install(evictions.items[i].start, evictions.items[i].stop,
                              evictions.items[i].owner)
        for i in range(misses.count):
            self._fill(misses.items[i].start, misses.items[i].stop, source)

    cdef void _begin(self):
        cdef int i
        self.llc_hits = 0
        self.dram_reads = 0
        self.dram_writes = 0
        self.spread_reads = 0
        self.spread_writes = 0
        for i in range(self.channels):
            self.tile_reads[i] = 0
            self.tile_writes[i] = 0

    cdef double _end(self, double now):
        """Queue the reads, then the writes (posted), since `_begin`; returns when the reads arrive."""
        cdef int i
        cdef double amount, done = now
        for i in range(self.channels):
            amount = self.tile_reads[i] + self.spread_reads / self.channels
            if amount:
                if self.channel_free[i] < now:
                    self.channel_free[i] = now
                self.channel_free[i] += amount / self.bytes_per_cycle
                if self.channel_free[i] + self.latency_cycles > done:
                    done = self.channel_free[i] + self.latency_cycles
            self.channel_totals[i] += amount
        for i in range(self.channels):
            amount = self.tile_writes[i] + self.spread_writes / self.channels
            if amount:
                if self.channel_free[i] < now:
                    self.channel_free[i] = now
                self.channel_free[i] += amount / self.bytes_per_cycle
            self.channel_totals[i] += amount
        return done

    def run_tile(self, int core, accesses, double now):
        """Run a tile's (start, stop, write, source) accesses on `core` at cycle `now`.

        Returns (LLC hit bytes, DRAM read bytes, cycle its DRAM reads arrive).
        """
        cdef double done
        self._begin()
        for start, stop, write, source in accesses:
            self._access(core, start, stop, write, source)
        done = self._end(now)
        return (self.llc_hits, self.dram_reads, done)

    def write(self, int core, i64 start, i64 stop, int source, double now):
        """One write access outside a tile (a reduced tensor written after the tiles)."""
        self._begin()
        self._access(core, start, stop, 1, source)
        self._end(now)

    def flush(self, double now):
        """Write every dirty line back (end of the iteration)."""
        cdef int k, i
        cdef _Evictions dropped
        self._begin()
        for k in range(len(self.private)):
            dropped = _Evictions()
            (<FastRangeCache> self.private[k]).flush(dropped)
            for i in range(dropped.count):
                if dropped.items[i].dirty:
                    self._install(dropped.items[i].start, dropped.items[i].stop,
                                  dropped.items[i].owner)
        dropped = _Evictions()
        self.llc.flush(dropped)
        for i in range(dropped.count):
            if dropped.items[i].dirty:
                self._dram_write(dropped.items[i].start, dropped.items[i].stop,
                                 dropped.items[i].owner)
        self._end(now)

    def source_bytes(self):
        """({source: read bytes}, {source: write bytes}), sources with traffic only."""
        reads, writes = {}, {}
        cdef int i
        for i in range(self.sources_capacity):
            if self.reads_by_source[i]:
                reads[i] = self.reads_by_source[i]
            if self.writes_by_source[i]:
                writes[i] = self.writes_by_source[i]
        return reads, writes

    def channel_bytes(self):
        """Bytes per channel so far."""
        return [self.channel_totals[i] for i in range(self.channels)]

    def cache_stats(self):
        """{"llc": (...), "private": (...)}: read, write, hit, miss, writeback bytes."""
        cdef FastRangeCache cache
        private = [0, 0, 0, 0, 0]
        for cache in self.private:
            private[0] += cache.read_bytes
            private[1] += cache.write_bytes
            private[2] += cache.hit_bytes
            private[3] += cache.miss_bytes
            private[4] += cache.writeback_bytes
        llc = (self.llc.read_bytes, self.llc.write_bytes, self.llc.hit_bytes, self.llc.miss_bytes,
               self.llc.writeback_bytes)
        return {"llc": tuple(llc), "private": tuple(private)}
