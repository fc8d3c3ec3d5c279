# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The memory system: a private cache per core, the shared LLC, address-interleaved DRAM channels.

The one implementation of bnsim's memory model, in Cython (compiled when bnsim is installed).
Accesses are rounded to whole lines. A core's access goes through its private cache (the last
private level of the machine), misses are filled from the LLC, LLC misses from DRAM. A store
(bnsim.trace.dataflow's kinds) either reads the line first (read for ownership), allocates it without
reading (a GPU L2), or streams past the caches (non-temporal). Dirty lines evicted from a private
cache are installed in the LLC; dirty lines evicted from the LLC, or flushed at the end, are written
to DRAM. An inclusive LLC back-invalidates private copies of what it evicts; otherwise the levels are
non-inclusive and non-exclusive (a fill lands in both). Every DRAM byte is charged to a source:
reads to the accessor, write-backs to the last writer.

Two cache models run behind one interface (_Cache): RangeCache (fast fidelity) holds byte ranges
and is exactly a fully associative LRU cache of lines at the cost of ranges; LineCache (line
fidelity) holds set-associative lines. Fast fidelity spreads a DRAM transfer of a whole interleaving
period or more evenly over the channels; line fidelity maps every byte to its channel. Each step's
DRAM reads queue on their channels first come, first served, then its writes (posted: they occupy
the channels, nobody waits for their data; the engine charges their path to the controller to the
core's window), at the rate each channel sustains for the step's mix of reads and writes (bnsim.sim.dramrate works the rates out with the DRAM timing model). `MemorySystem.run_kernel` is the engine's loop over a kernel's
boxes and steps. `earlier_and_later_into` is the analytic fidelity's dominance sum
(bnsim.sim.stackmodel.earlier_and_later) as a Fenwick tree. Tests check the caches against
line-by-line LRU references (tests/unit/test_cache.py, test_linecache.py) and the kernel loop
against one SimPy process per core (tests/unit/test_sim.py).
"""

# every cdef function is noexcept: it cannot fail, and an exception check after every call is
# a large cost per line
cimport cython
from libc.math cimport INFINITY
from libc.stdlib cimport abort, calloc, free, malloc, realloc
from libc.string cimport memcpy, memmove, memset

from collections import namedtuple

# what a step cost the memory system (run_tile), and a cache level's byte counters (cache_stats)
TileCost = namedtuple(
    "TileCost",
    ["private_hit_bytes", "llc_hit_bytes", "dram_read_bytes", "reads_done_cycle",
     "llc_wait_cycle"],
)
CacheBytes = namedtuple(
    "CacheBytes", ["read_bytes", "write_bytes", "hit_bytes", "miss_bytes", "writeback_bytes"]
)

ctypedef long long i64


cdef enum:
    INDEX_BLOCK = 256  # piece ids per block of a range cache's index


cdef struct Piece:
    i64 start
    i64 stop
    int owner
    int older
    int newer
    unsigned int arrival  # the step whose DRAM fill brought it (0: arrived long ago)
    char dirty
    char used


cdef struct Block:  # strided runs of one stream (bnsim.trace._tiles.Block)
    i64 first
    i64 length
    i64 inner_count
    i64 inner_stride
    i64 outer_count
    i64 outer_stride


cdef struct StreamCursor:  # a box's stream and how far its steps have taken it
    i64 total
    i64 outer
    i64 inner
    i64 offset
    i64 taken
    int first_block
    int num_blocks
    int index
    int source
    char kind  # 0 a load; stores: 1 read for ownership, 2 non-temporal, 3 allocate


cdef struct WorkBox:  # one box of a core's share of a kernel (bnsim.trace.BoxWork)
    double cycles
    i64 flops
    i64 steps
    int first_stream
    int num_streams


cdef struct Eviction:
    i64 start
    i64 stop
    int owner
    char dirty


@cython.final  # direct calls, not through a method table
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

    cdef inline void push_merged(self, i64 start, i64 stop, char dirty, int owner) noexcept:
        """Push, or extend the last entry when it ends at `start` with the same dirty and owner."""
        cdef Eviction* last
        if self.count:
            last = &self.items[self.count - 1]
            if last.stop == start and last.dirty == dirty and last.owner == owner:
                last.stop = stop
                return
        self.push(start, stop, dirty, owner)

    cdef inline void push(self, i64 start, i64 stop, char dirty, int owner) noexcept:
        if self.count == self.capacity:
            self.capacity *= 2
            self.items = <Eviction*> realloc(self.items, self.capacity * sizeof(Eviction))
        self.items[self.count].start = start
        self.items[self.count].stop = stop
        self.items[self.count].dirty = dirty
        self.items[self.count].owner = owner
        self.count += 1


cdef class _Cache:
    """What the memory system needs of a cache: byte counters, three operations, arrivals.

    Arrivals (kept when `tracks_arrival`, as in the shared LLC): a line filled from DRAM is in the
    cache at once, but its data arrive only when the step that fetched it has them. Each step is
    numbered (`begin_step`); a filled line remembers its step, and the step's arrival cycle is
    set when it is known (`settle`). A hit on a line whose data are still on their way raises
    `wait` to their arrival: a core that finds a line another core is fetching waits for it, as
    a miss that merges with an outstanding one does.
    """
    cdef public i64 read_bytes, write_bytes, hit_bytes, miss_bytes, writeback_bytes
    cdef public bint report_clean
    cdef public bint tracks_arrival
    cdef public double wait  # latest arrival among this step's hits
    cdef double now  # the current step's start
    cdef unsigned int step  # the current step's number
    cdef double* arrivals  # per step number: the cycle its fills arrive
    cdef i64 arrivals_capacity

    def __cinit__(self, *args, **kwargs):
        self.arrivals_capacity = 1024
        self.arrivals = <double*> calloc(self.arrivals_capacity, sizeof(double))

    def __dealloc__(self):
        free(self.arrivals)

    cpdef void begin_step(self, double now) noexcept:
        """Start a step at cycle `now`: its fills are in flight until `settle`."""
        self.step += 1
        if self.step >= self.arrivals_capacity:
            self.arrivals_capacity *= 2
            self.arrivals = <double*> realloc(self.arrivals, self.arrivals_capacity * sizeof(double))
        self.arrivals[self.step] = INFINITY  # until settled
        self.now = now
        self.wait = now

    cpdef void settle(self, double arrival) noexcept:
        """The current step's fills arrive at cycle `arrival`."""
        self.arrivals[self.step] = arrival

    cdef inline unsigned int _filled_now(self, bint fill) noexcept:
        """The arrival stamp of bytes inserted now: this step's, if they come from DRAM."""
        return self.step if fill and self.tracks_arrival else 0

    cdef inline void _note_hit(self, unsigned int arrival) noexcept:
        if arrival != self.step and self.arrivals[arrival] > self.wait:
            self.wait = self.arrivals[arrival]

    cdef inline bint _same_arrival(self, unsigned int a, unsigned int b) noexcept:
        """Whether bytes stamped a and b may share one piece: the same step, or both arrived."""
        return a == b or (self.arrivals[a] <= self.now and self.arrivals[b] <= self.now)

    cdef i64 access(self, i64 start, i64 stop, char write, int owner, _Evictions evictions,
                    bint fill, _Evictions misses) noexcept:
        """Touch [start, stop); missed ranges go to `misses`; returns the missed bytes."""
        return 0  # abstract: every subclass overrides the three operations

    cdef void invalidate(self, i64 start, i64 stop, _Evictions dropped) noexcept:
        """Drop [start, stop); the dropped ranges go to `dropped`."""

    cdef void flush(self, _Evictions dropped) noexcept:
        """Drop everything; the dropped ranges go to `dropped`."""

    cdef i64 held_bytes(self) noexcept:
        """Bytes the cache holds."""
        return 0

    def py_access(self, i64 start, i64 stop, bint write, int owner, bint fill=True):
        """Touch [start, stop): (missed (start, stop) ranges, evicted (start, stop, dirty, owner)).

        `write` makes the bytes dirty and owned by `owner`; `fill=False` allocates without
        reading (and reports no misses).
        """
        cdef _Evictions evictions = _Evictions()
        cdef _Evictions misses = _Evictions()
        cdef int i
        self.access(start, stop, write, owner, evictions, fill, misses)
        return ([(misses.items[i].start, misses.items[i].stop) for i in range(misses.count)],
                [(evictions.items[i].start, evictions.items[i].stop, bool(evictions.items[i].dirty),
                  evictions.items[i].owner) for i in range(evictions.count)])

    def py_invalidate(self, i64 start, i64 stop):
        """Drop [start, stop): the dropped (start, stop, dirty, owner) ranges."""
        cdef _Evictions dropped = _Evictions()
        cdef int i
        self.invalidate(start, stop, dropped)
        return [(dropped.items[i].start, dropped.items[i].stop, bool(dropped.items[i].dirty),
                 dropped.items[i].owner) for i in range(dropped.count)]

    def py_flush(self):
        """Drop everything, counting dirty bytes as written back: the dropped ranges."""
        cdef _Evictions dropped = _Evictions()
        cdef int i
        self.flush(dropped)
        return [(dropped.items[i].start, dropped.items[i].stop, bool(dropped.items[i].dirty),
                 dropped.items[i].owner) for i in range(dropped.count)]


@cython.final
cdef class RangeCache(_Cache):
    """A fully associative, write-back LRU cache over byte ranges: exact line LRU at range cost.

    The cache holds pieces: address ranges [start, stop) with one recency, a dirty flag and an
    owner (the attribution id of the last writer). An access scans its range in address order: a
    cached piece is a hit and becomes most recent; a gap is a miss, inserted as most recent after
    evicting least recent bytes. Within a piece, lower addresses count as older (a stream touches
    them first), so a partial eviction drops a piece's low end. For accesses in whole lines this is
    exactly a fully associative LRU cache of lines (tests/unit/test_cache.py checks it against one),
    but it costs per range, not per line. Evictions of clean bytes are reported only with
    `report_clean` (an inclusive LLC needs them to invalidate the levels above).

    Pieces live in an array with a recency list through them and an index sorted by start address.
    The index is a list of sorted blocks of at most INDEX_BLOCK piece ids (a two-level sorted
    array): finding, inserting and removing a piece cost a binary search over the blocks and one
    within a block, and moving at most one block's ids, so that an LLC holding tens of thousands
    of small pieces (a GPU's L2 under NCHW tiles) stays fast.
    """
    cdef Piece* pieces
    cdef int** blocks  # per index block: piece ids sorted by start
    cdef i64** keys  # per index block: the start of each of its pieces
    cdef i64* block_first  # per index block: the start of its first piece
    cdef int* block_counts
    cdef int num_blocks
    cdef int blocks_capacity
    cdef int capacity_pieces
    cdef int free_head
    cdef int oldest
    cdef int newest
    cdef public i64 size_bytes
    cdef public i64 used_bytes

    def __cinit__(self, i64 size_bytes, bint report_clean=True):
        self.size_bytes = size_bytes
        self.report_clean = report_clean
        self.capacity_pieces = 64
        self.pieces = <Piece*> malloc(self.capacity_pieces * sizeof(Piece))
        self.blocks_capacity = 16
        self.blocks = <int**> malloc(self.blocks_capacity * sizeof(int*))
        self.keys = <i64**> malloc(self.blocks_capacity * sizeof(i64*))
        self.block_first = <i64*> malloc(self.blocks_capacity * sizeof(i64))
        self.block_counts = <int*> malloc(self.blocks_capacity * sizeof(int))
        self.num_blocks = 0
        self._reset()

    def __dealloc__(self):
        cdef int b
        for b in range(self.num_blocks):
            free(self.blocks[b])
            free(self.keys[b])
        free(self.blocks)
        free(self.keys)
        free(self.block_first)
        free(self.block_counts)
        free(self.pieces)

    cdef void _reset(self) noexcept:
        cdef int i
        for i in range(self.num_blocks):
            free(self.blocks[i])
            free(self.keys[i])
        self.num_blocks = 0
        self.oldest = -1
        self.newest = -1
        self.used_bytes = 0
        for i in range(self.capacity_pieces):
            self.pieces[i].used = 0
            self.pieces[i].newer = i + 1 if i + 1 < self.capacity_pieces else -1
        self.free_head = 0

    cdef int _new_piece(self, i64 start, i64 stop, char dirty, int owner,
                        unsigned int arrival) noexcept:
        cdef int i, old
        if self.free_head < 0:
            old = self.capacity_pieces
            self.capacity_pieces *= 2
            self.pieces = <Piece*> realloc(self.pieces, self.capacity_pieces * sizeof(Piece))
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
        self.pieces[i].arrival = arrival
        self.pieces[i].older = -1
        self.pieces[i].newer = -1
        self.pieces[i].used = 1
        return i

    cdef void _free_piece(self, int i) noexcept:
        self.pieces[i].used = 0
        self.pieces[i].newer = self.free_head
        self.free_head = i

    # --- sorted index ---------------------------------------------------------------------------

    cdef void _locate(self, i64 address, int* block, int* position) noexcept:
        """The block and position of the last piece starting at or below `address` (position -1,
        block 0: none does)."""
        cdef int low = 0, high = self.num_blocks, mid
        cdef i64* keys
        while low < high:  # blocks whose first piece starts at or below the address
            mid = (low + high) >> 1
            if self.block_first[mid] <= address:
                low = mid + 1
            else:
                high = mid
        if low == 0:
            block[0] = 0
            position[0] = -1
            return
        block[0] = low - 1
        keys = self.keys[low - 1]
        low, high = 0, self.block_counts[block[0]]
        while low < high:
            mid = (low + high) >> 1
            if keys[mid] <= address:
                low = mid + 1
            else:
                high = mid
        position[0] = low - 1

    cdef void _rekey(self, i64 start, i64 new_start) noexcept:
        """The piece starting at `start` now starts at `new_start` (its rank unchanged)."""
        cdef int block, position
        self._locate(start, &block, &position)
        self.keys[block][position] = new_start
        if position == 0:
            self.block_first[block] = new_start

    cdef void _index_insert(self, int piece) noexcept:
        cdef int block, position, count, half
        cdef i64 start = self.pieces[piece].start
        if self.num_blocks == 0:
            self._open_block(0)
            self.blocks[0][0] = piece
            self.keys[0][0] = start
            self.block_first[0] = start
            self.block_counts[0] = 1
            return
        self._locate(start, &block, &position)
        position += 1
        if self.block_counts[block] == INDEX_BLOCK:  # split the full block in two halves
            half = INDEX_BLOCK // 2
            self._open_block(block + 1)
            memcpy(self.blocks[block + 1], &self.blocks[block][half],
                   (INDEX_BLOCK - half) * sizeof(int))
            memcpy(self.keys[block + 1], &self.keys[block][half],
                   (INDEX_BLOCK - half) * sizeof(i64))
            self.block_first[block + 1] = self.keys[block + 1][0]
            self.block_counts[block + 1] = INDEX_BLOCK - half
            self.block_counts[block] = half
            if position > half:
                block += 1
                position -= half
        count = self.block_counts[block]
        memmove(&self.blocks[block][position + 1], &self.blocks[block][position],
                (count - position) * sizeof(int))
        memmove(&self.keys[block][position + 1], &self.keys[block][position],
                (count - position) * sizeof(i64))
        self.blocks[block][position] = piece
        self.keys[block][position] = start
        if position == 0:
            self.block_first[block] = start
        self.block_counts[block] = count + 1

    cdef void _open_block(self, int at) noexcept:
        """A new, empty index block at position `at` of the block list."""
        cdef int moved = self.num_blocks - at
        if self.num_blocks == self.blocks_capacity:
            self.blocks_capacity *= 2
            self.blocks = <int**> realloc(self.blocks, self.blocks_capacity * sizeof(int*))
            self.keys = <i64**> realloc(self.keys, self.blocks_capacity * sizeof(i64*))
            self.block_first = <i64*> realloc(self.block_first, self.blocks_capacity * sizeof(i64))
            self.block_counts = <int*> realloc(self.block_counts, self.blocks_capacity * sizeof(int))
        memmove(&self.blocks[at + 1], &self.blocks[at], moved * sizeof(int*))
        memmove(&self.keys[at + 1], &self.keys[at], moved * sizeof(i64*))
        memmove(&self.block_first[at + 1], &self.block_first[at], moved * sizeof(i64))
        memmove(&self.block_counts[at + 1], &self.block_counts[at], moved * sizeof(int))
        self.blocks[at] = <int*> malloc(INDEX_BLOCK * sizeof(int))
        self.keys[at] = <i64*> malloc(INDEX_BLOCK * sizeof(i64))
        self.block_counts[at] = 0
        self.num_blocks += 1

    cdef void _index_remove(self, int piece) noexcept:
        cdef int block, position, count, moved
        self._locate(self.pieces[piece].start, &block, &position)
        count = self.block_counts[block] - 1
        memmove(&self.blocks[block][position], &self.blocks[block][position + 1],
                (count - position) * sizeof(int))
        memmove(&self.keys[block][position], &self.keys[block][position + 1],
                (count - position) * sizeof(i64))
        self.block_counts[block] = count
        if count == 0:
            free(self.blocks[block])
            free(self.keys[block])
            moved = self.num_blocks - block - 1
            memmove(&self.blocks[block], &self.blocks[block + 1], moved * sizeof(int*))
            memmove(&self.keys[block], &self.keys[block + 1], moved * sizeof(i64*))
            memmove(&self.block_first[block], &self.block_first[block + 1], moved * sizeof(i64))
            memmove(&self.block_counts[block], &self.block_counts[block + 1], moved * sizeof(int))
            self.num_blocks -= 1
        elif position == 0:
            self.block_first[block] = self.keys[block][0]

    cdef int _piece_at_or_after(self, i64 address) noexcept:
        cdef int block, position, piece
        if self.num_blocks == 0:
            return -1
        self._locate(address, &block, &position)
        if position >= 0:
            piece = self.blocks[block][position]
            if self.pieces[piece].stop > address:
                return piece
        position += 1
        if position < self.block_counts[block]:
            return self.blocks[block][position]
        if block + 1 < self.num_blocks:
            return self.blocks[block + 1][0]
        return -1

    # --- recency list ---------------------------------------------------------------------------

    cdef void _link_newest(self, int piece) noexcept:
        self.pieces[piece].older = self.newest
        self.pieces[piece].newer = -1
        if self.newest >= 0:
            self.pieces[self.newest].newer = piece
        else:
            self.oldest = piece
        self.newest = piece

    cdef void _link_after(self, int piece, int anchor) noexcept:
        cdef int after = self.pieces[anchor].newer
        self.pieces[piece].older = anchor
        self.pieces[piece].newer = after
        if after >= 0:
            self.pieces[after].older = piece
        else:
            self.newest = piece
        self.pieces[anchor].newer = piece

    cdef void _unlink(self, int piece) noexcept:
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

    cdef void _cut(self, int piece, i64 low, i64 high) noexcept:
        cdef i64 start = self.pieces[piece].start, stop = self.pieces[piece].stop
        cdef int top
        self.used_bytes -= high - low
        if low == start and high == stop:
            self._unlink(piece)
            self._index_remove(piece)
            self._free_piece(piece)
        elif low == start:  # pieces are disjoint: a piece cut from the front keeps its rank
            self._rekey(start, high)
            self.pieces[piece].start = high
        else:
            self.pieces[piece].stop = low
            if high < stop:
                top = self._new_piece(high, stop, self.pieces[piece].dirty, self.pieces[piece].owner,
                                      self.pieces[piece].arrival)
                self._link_after(top, piece)
                self._index_insert(top)

    cdef int _add(self, i64 low, i64 high, char dirty, int owner, int last,
                  unsigned int arrival) noexcept:
        cdef int piece
        self.used_bytes += high - low
        if last >= 0 and last == self.newest and self.pieces[last].used and \
                self.pieces[last].stop == low and self.pieces[last].dirty == dirty and \
                self.pieces[last].owner == owner and \
                self._same_arrival(self.pieces[last].arrival, arrival):
            self.pieces[last].stop = high
            if self.pieces[last].arrival != arrival:
                self.pieces[last].arrival = 0  # both arrived
            return last
        piece = self._new_piece(low, high, dirty, owner, arrival)
        self._link_newest(piece)
        self._index_insert(piece)
        return piece

    cdef bint _merges(self, int last, int piece, i64 low, char dirty, int owner,
                      unsigned int arrival) noexcept:
        """Whether `_add` would extend `last` once `piece` is cut out of the recency list."""
        cdef int newest = self.pieces[piece].older if piece == self.newest else self.newest
        return (last >= 0 and last == newest and self.pieces[last].used
                and self.pieces[last].stop == low and self.pieces[last].dirty == dirty
                and self.pieces[last].owner == owner
                and self._same_arrival(self.pieces[last].arrival, arrival))

    cdef void _make_room(self, i64 size, _Evictions evictions) noexcept:
        cdef int piece
        cdef i64 low, high
        while self.used_bytes + size > self.size_bytes:
            piece = self.oldest
            low = self.pieces[piece].start
            high = self.pieces[piece].stop
            if high > low + self.used_bytes + size - self.size_bytes:
                high = low + self.used_bytes + size - self.size_bytes
            if self.pieces[piece].dirty:
                evictions.push(low, high, 1, self.pieces[piece].owner)
                self.writeback_bytes += high - low
            elif self.report_clean:
                evictions.push(low, high, 0, self.pieces[piece].owner)
            self._cut(piece, low, high)

    cdef int _insert(self, i64 low, i64 high, char write, int owner, _Evictions evictions, int last,
                     unsigned int arrival) noexcept:
        cdef i64 passed = high - self.size_bytes if high - low > self.size_bytes else low
        self._make_room(high - passed, evictions)
        if passed > low:  # the front of a stream longer than the cache passes straight through
            if write:
                evictions.push(low, passed, 1, owner)
                self.writeback_bytes += passed - low
            elif self.report_clean:
                evictions.push(low, passed, 0, owner)
        return self._add(passed, high, write, owner, last, arrival)

    cdef i64 access(self, i64 start, i64 stop, char write, int owner, _Evictions evictions,
                    bint fill, _Evictions misses) noexcept:
        """Touch [start, stop); missed ranges go to `misses` (as non-dirty entries)."""
        cdef i64 position = start, hit_stop, gap_stop, missed = 0
        cdef int piece, last = -1, piece_owner
        cdef unsigned int arrival
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
                arrival = self.pieces[piece].arrival
                self._note_hit(arrival)
                if self.pieces[piece].start == position and self.pieces[piece].stop == hit_stop \
                        and not self._merges(last, piece, position, dirty, piece_owner, arrival):
                    # a whole piece hit: it becomes the newest where it is (what cutting it out
                    # and adding it back would do, without moving the index)
                    self._unlink(piece)
                    self._link_newest(piece)
                    self.pieces[piece].dirty = dirty
                    self.pieces[piece].owner = piece_owner
                    last = piece
                else:
                    self._cut(piece, position, hit_stop)
                    last = self._add(position, hit_stop, dirty, piece_owner, last, arrival)
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
            last = self._insert(position, gap_stop, write, owner, evictions, last,
                                self._filled_now(fill))
            position = gap_stop
        return missed

    cdef void invalidate(self, i64 start, i64 stop, _Evictions dropped) noexcept:
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

    cdef void flush(self, _Evictions dropped) noexcept:
        cdef int piece = self.oldest
        while piece >= 0:
            dropped.push(self.pieces[piece].start, self.pieces[piece].stop,
                         self.pieces[piece].dirty, self.pieces[piece].owner)
            if self.pieces[piece].dirty:
                self.writeback_bytes += self.pieces[piece].stop - self.pieces[piece].start
            piece = self.pieces[piece].newer
        self._reset()

    cdef i64 held_bytes(self) noexcept:
        return self.used_bytes

    def contents(self):
        """(start, stop, dirty) of every piece, oldest first."""
        found = []
        cdef int piece = self.oldest
        while piece >= 0:
            found.append((self.pieces[piece].start, self.pieces[piece].stop,
                          bool(self.pieces[piece].dirty)))
            piece = self.pieces[piece].newer
        return found


# Line caches: each set is one block of memory, [tags | owner-and-dirty words | arrival steps |
# head, count], its
# lines a ring in recency order (LineCache), so that a miss costs O(1) after the tag search,
# which SSE2 does four tags at a time (_linescan.h). Tags are line number // sets, EMPTY_TAG in
# empty slots. No software prefetch: the sets of a range are consecutive blocks, which the
# hardware prefetcher follows (asking for them 8 lines ahead made streams 20% slower).
ctypedef unsigned int u32
ctypedef unsigned short u16
ctypedef unsigned char u8

cdef extern from "_linescan.h":
    int bnsim_find_tag(const u32* tags, int padded_ways, u32 tag) nogil

cdef u32 EMPTY_TAG = 0xFFFFFFFF
# a LineCache counts the lines it holds per granule of 2**GRANULE_SHIFT line numbers, so that an
# invalidation skips the granules it holds nothing of (a non-temporal store invalidates its range in
# every cache, which mostly hold none of it)
cdef int GRANULE_SHIFT = 10


cdef inline void _to_front(u32* tags, u32* meta, u32* arrivals, u16* header, int ways, int way,
                           u32 state) noexcept:
    """Make the line in slot `way` its set's most recent, with owner-and-dirty word `state`."""
    cdef int head = header[0], count = header[1], position = way - header[0], dst = way, src, k
    cdef u32 tag = tags[way], arrival = arrivals[way]
    if position < 0:
        position += ways
    if position == 0:
        meta[way] = state
        return
    if count == ways and 2 * position > ways - 1:  # fewer lines behind it: move those up
        for k in range(ways - 1 - position):
            src = dst + 1 if dst + 1 < ways else 0
            tags[dst] = tags[src]
            meta[dst] = meta[src]
            arrivals[dst] = arrivals[src]
            dst = src
        header[0] = dst  # the slot the least recent line left
    else:  # move the more recent lines back; the head slot comes free
        for k in range(position):
            src = dst - 1 if dst else ways - 1
            tags[dst] = tags[src]
            meta[dst] = meta[src]
            arrivals[dst] = arrivals[src]
            dst = src
    tags[dst] = tag
    meta[dst] = state
    arrivals[dst] = arrival


@cython.final
cdef class LineCache(_Cache):
    """A set-associative, write-back LRU cache of lines: the exact cache of line fidelity.

    `size_bytes` in lines of `line` bytes, `ways` per set (ways = lines: fully associative). An
    access walks its range line by line in address order; a line maps to set
    `(address // line) % sets` (plain modulo indexing: real LLCs hash addresses over slices with an
    unpublished function, see docs/model.md). Missed and evicted lines are reported as ranges,
    adjacent lines merged; clean evictions only with `report_clean`.

    Per set one block of tags, then owner-and-dirty words, arrival steps, then (head, count).

    A set's lines sit in a ring of `ways` slots in recency order: the most recent at slot `head`,
    the next at head + 1 (mod ways), and so on; the empty slots follow the least recent one. A
    miss takes slot head - 1 (the least recent line when the set is full: its victim) and makes it
    the head, so streaming misses cost one tag search and two stores; a hit moves the lines more
    recent than it (or, in a full set, less recent, whichever are fewer) one slot along. Empty
    slots and the tags that pad `ways` to a multiple of four hold EMPTY_TAG, which no line has.
    """
    cdef i64 line
    cdef i64 num_sets
    cdef i64 set_mask  # num_sets - 1 when a power of two, else -1 (use division)
    cdef int set_shift
    cdef int ways
    cdef int padded  # ways rounded up to a multiple of 4
    cdef i64 set_bytes
    cdef u8* blocks
    cdef public i64 max_line_number  # tags must stay below EMPTY_TAG
    cdef u16* granules  # lines held per granule of line numbers (GRANULE_SHIFT)
    cdef i64 num_granules

    def __cinit__(self, i64 size_bytes, int ways, i64 line, bint report_clean=True):
        cdef i64 lines = size_bytes // line, set_index
        if line <= 0 or ways <= 0 or size_bytes % line or lines % ways:
            raise ValueError(f"a cache of {size_bytes} B cannot have {ways} ways of {line} B lines")
        if ways > 65535:
            raise ValueError(f"the compiled line cache takes at most 65535 ways, not {ways}")
        self.line = line
        self.ways = ways
        self.padded = (ways + 3) // 4 * 4
        self.num_sets = lines // ways
        self.set_mask = -1
        self.set_shift = 0
        if self.num_sets & (self.num_sets - 1) == 0:
            self.set_mask = self.num_sets - 1
            while (1 << self.set_shift) < self.num_sets:
                self.set_shift += 1
        self.report_clean = report_clean
        self.max_line_number = <i64> (EMPTY_TAG - 1) * self.num_sets
        # tags, owner-and-dirty words, arrival steps, header; tags 16-byte aligned
        self.set_bytes = (4 * self.padded + 8 * ways + 4 + 15) // 16 * 16
        self.blocks = <u8*> malloc(self.num_sets * self.set_bytes)
        for set_index in range(self.num_sets):
            self._clear(self.blocks + set_index * self.set_bytes)

    def __dealloc__(self):
        free(self.blocks)
        free(self.granules)

    cdef inline void _held(self, i64 number) noexcept:
        """Count line `number` as held (growing the granule counts to reach it)."""
        cdef i64 granule = number >> GRANULE_SHIFT, size
        cdef u16* grown
        if granule >= self.num_granules:
            size = granule + 1 if granule + 1 > 2 * self.num_granules else 2 * self.num_granules
            grown = <u16*> realloc(self.granules, size * sizeof(u16))
            if grown == NULL:
                abort()
            memset(grown + self.num_granules, 0, (size - self.num_granules) * sizeof(u16))
            self.granules, self.num_granules = grown, size
        self.granules[granule] += 1

    cdef inline void _released(self, i64 number) noexcept:
        self.granules[number >> GRANULE_SHIFT] -= 1

    cdef inline u8* _block(self, i64 number) noexcept:
        if self.set_mask >= 0:
            return self.blocks + (number & self.set_mask) * self.set_bytes
        return self.blocks + (number % self.num_sets) * self.set_bytes

    cdef inline u32 _tag(self, i64 number) noexcept:
        if self.set_mask >= 0:
            return <u32> (number >> self.set_shift)
        return <u32> (number // self.num_sets)

    cdef inline u16* _header(self, u8* block) noexcept:
        """(head slot, count of lines) of a set."""
        return <u16*> (block + 4 * self.padded + 8 * self.ways)

    cdef inline void _clear(self, u8* block) noexcept:
        cdef int way
        cdef u32* tags = <u32*> block
        cdef u16* header = self._header(block)
        for way in range(self.padded):
            tags[way] = EMPTY_TAG
        header[0] = 0
        header[1] = 0

    cdef i64 access(self, i64 start, i64 stop, char write, int owner, _Evictions evictions,
                    bint fill, _Evictions misses) noexcept:
        cdef i64 number, missed = 0, line = self.line, set_index, victim_number
        cdef i64 first = start // line, end = stop // line, capacity = self.num_sets * self.ways
        cdef i64 exact_end = end, num_sets = self.num_sets, set_mask = self.set_mask
        cdef i64 set_bytes = self.set_bytes
        cdef int way, slot, padded = self.padded, ways = self.ways, set_shift = self.set_shift
        cdef u32 tag, victim_meta, state = (<u32> owner << 1) | (write != 0)
        cdef u8* blocks = self.blocks
        cdef u8* block
        cdef u32* tags
        cdef u32* meta
        cdef u32* arrivals
        cdef u16* header
        cdef u32 arrival = self._filled_now(fill)
        cdef i64 hits = 0, misses_count = 0, writebacks = 0
        cdef bint report_clean = self.report_clean
        # the current run of missed lines and of victims, pushed when a line does not extend it
        cdef i64 miss_start = 0, miss_stop = -1, victim_start = 0, victim_stop = -1
        cdef u32 victim_run_meta = 0
        if write:
            self.write_bytes += stop - start
        else:
            self.read_bytes += stop - start
        if end - first >= 2 * capacity:  # a stream through the whole cache: see _stream_tail
            exact_end = first + capacity
        for number in range(first, exact_end):
            if set_mask >= 0:
                set_index = number & set_mask
                tag = <u32> (number >> set_shift)
            else:
                set_index = number % num_sets
                tag = <u32> (number // num_sets)
            block = blocks + set_index * set_bytes
            tags = <u32*> block
            meta = <u32*> (block + 4 * padded)
            arrivals = <u32*> (block + 4 * padded + 4 * ways)
            header = <u16*> (block + 4 * padded + 8 * ways)
            way = bnsim_find_tag(tags, padded, tag)
            if way >= 0:  # a hit: to the front
                hits += 1
                self._note_hit(arrivals[way])
                _to_front(tags, meta, arrivals, header, ways, way,
                          ((<u32> owner << 1) | 1) if write else meta[way])
                continue
            if fill:
                misses_count += 1
                if miss_stop != number * line:
                    if miss_stop >= 0 and misses is not None:
                        misses.push_merged(miss_start, miss_stop, 0, owner)
                    miss_start = number * line
                miss_stop = (number + 1) * line
            slot = header[0] - 1 if header[0] else ways - 1
            if header[1] == ways:  # full: the least recent line leaves
                victim_meta = meta[slot]
                victim_number = <i64> tags[slot] * num_sets + set_index
                self._released(victim_number)
                if victim_meta & 1:
                    writebacks += 1
                if victim_meta & 1 or report_clean:
                    if victim_stop != victim_number * line or victim_run_meta != victim_meta:
                        if victim_stop >= 0:
                            evictions.push_merged(victim_start, victim_stop, victim_run_meta & 1,
                                                  victim_run_meta >> 1)
                        victim_start = victim_number * line
                        victim_run_meta = victim_meta
                    victim_stop = (victim_number + 1) * line
            else:
                header[1] += 1
            tags[slot] = tag
            meta[slot] = state
            arrivals[slot] = arrival
            header[0] = slot
            self._held(number)
        if miss_stop >= 0 and misses is not None:
            misses.push_merged(miss_start, miss_stop, 0, owner)
        if victim_stop >= 0:
            evictions.push_merged(victim_start, victim_stop, victim_run_meta & 1,
                                  victim_run_meta >> 1)
        self.hit_bytes += hits * line
        self.miss_bytes += misses_count * line
        self.writeback_bytes += writebacks * line
        missed = misses_count * line
        if exact_end < end:
            missed += self._stream_tail(first, end, write, owner, evictions, fill, misses)
        return missed

    cdef i64 _stream_tail(self, i64 first, i64 end, char write, int owner, _Evictions evictions,
                          bint fill, _Evictions misses) noexcept:
        """Lines first + C .. end of a stream of distinct lines, C = the cache's lines, end - first
        ≥ 2C, after `access` has run its first C lines exactly; returns the bytes missed.

        Line first + j goes to set (first + j) mod sets as that set's (j // sets)-th line of the
        stream. After the first C lines every set holds exactly `ways` lines of the stream (the
        older content is gone), so each later line misses and evicts the least recent line of its
        set, which is line first + j - C. Hence, exactly as line by line: the lines first + C ..
        end miss; the victims are lines first .. end - C in order, those of the first C carrying
        the state the exact part left them, the later ones (owner, write); and every set ends
        holding the last `ways` lines of the stream that map to it. Cost: C tag searches and C
        stores instead of end - first full accesses.
        """
        cdef i64 line = self.line, capacity = self.num_sets * self.ways, number
        cdef i64 missed = 0
        cdef int way, padded = self.padded, ways = self.ways
        cdef u8* block
        cdef u16* header
        cdef u32 state = (<u32> owner << 1) | (write != 0), victim_meta
        cdef u32 arrival = self._filled_now(fill)
        if fill:
            missed = (end - first - capacity) * line
            self.miss_bytes += missed
            if misses is not None:
                misses.push_merged((first + capacity) * line, end * line, 0, owner)
        for number in range(first, first + capacity):  # the victims the exact part installed
            self._released(number)
            block = self._block(number)
            way = bnsim_find_tag(<u32*> block, padded, self._tag(number))
            victim_meta = (<u32*> (block + 4 * padded))[way]
            if victim_meta & 1:
                self.writeback_bytes += line
            if victim_meta & 1 or self.report_clean:
                evictions.push_merged(number * line, (number + 1) * line, victim_meta & 1,
                                      victim_meta >> 1)
        if write or self.report_clean:  # the victims that came with the tail
            if write:
                self.writeback_bytes += (end - first - 2 * capacity) * line
            if end - first > 2 * capacity:
                evictions.push_merged((first + capacity) * line, (end - capacity) * line,
                                      write != 0, owner)
        for number in range(end - capacity, end):  # each set's oldest first, newest at slot 0
            self._held(number)
            block = self._block(number)
            way = ways - 1 - <int> ((number - (end - capacity)) // self.num_sets)
            (<u32*> block)[way] = self._tag(number)
            (<u32*> (block + 4 * padded))[way] = state
            (<u32*> (block + 4 * padded + 4 * ways))[way] = arrival
            header = self._header(block)
            header[0] = 0
            header[1] = ways
        return missed

    cdef void invalidate(self, i64 start, i64 stop, _Evictions dropped) noexcept:
        cdef i64 number = start // self.line, last = (stop + self.line - 1) // self.line
        cdef i64 granule, span_end
        while number < last:
            granule = number >> GRANULE_SHIFT
            span_end = (granule + 1) << GRANULE_SHIFT
            if span_end > last:
                span_end = last
            if granule < self.num_granules and self.granules[granule]:
                self._invalidate_lines(number, span_end, dropped)
            number = span_end

    cdef void _invalidate_lines(self, i64 first, i64 end, _Evictions dropped) noexcept:
        cdef i64 number
        cdef int way, dst, src, k, position, padded = self.padded, ways = self.ways
        cdef u8* block
        cdef u32* tags
        cdef u32* meta
        cdef u32* arrivals
        cdef u16* header
        for number in range(first, end):
            block = self._block(number)
            tags = <u32*> block
            way = bnsim_find_tag(tags, padded, self._tag(number))
            if way < 0:
                continue
            meta = <u32*> (block + 4 * padded)
            arrivals = <u32*> (block + 4 * padded + 4 * ways)
            header = self._header(block)
            dropped.push_merged(number * self.line, (number + 1) * self.line, meta[way] & 1,
                                meta[way] >> 1)
            self._released(number)
            position = way - header[0]
            if position < 0:
                position += ways
            dst = way
            for k in range(header[1] - 1 - position):  # the less recent lines move up a slot
                src = dst + 1 if dst + 1 < ways else 0
                tags[dst] = tags[src]
                meta[dst] = meta[src]
                arrivals[dst] = arrivals[src]
                dst = src
            tags[dst] = EMPTY_TAG
            header[1] -= 1

    cdef void flush(self, _Evictions dropped) noexcept:
        """Set by set, least recent first, like LineCache.flush."""
        cdef i64 set_index, number
        cdef int way, position, padded = self.padded
        cdef u8* block
        cdef u32* meta
        cdef u16* header
        for set_index in range(self.num_sets):
            block = self.blocks + set_index * self.set_bytes
            meta = <u32*> (block + 4 * padded)
            header = self._header(block)
            for position in range(header[1] - 1, -1, -1):
                way = (header[0] + position) % self.ways
                number = <i64> (<u32*> block)[way] * self.num_sets + set_index
                if meta[way] & 1:
                    self.writeback_bytes += self.line
                dropped.push_merged(number * self.line, (number + 1) * self.line, meta[way] & 1,
                                    meta[way] >> 1)
            self._clear(block)
        if self.num_granules:
            memset(self.granules, 0, self.num_granules * sizeof(u16))

    cdef i64 held_bytes(self) noexcept:
        cdef i64 set_index, held = 0
        for set_index in range(self.num_sets):
            held += self._header(self.blocks + set_index * self.set_bytes)[1]
        return held * self.line

    @property
    def used_bytes(self):
        """Bytes of the lines held."""
        return self.held_bytes()

    def lines(self):
        """(line address, dirty) of every line, set by set, least recent first (for tests)."""
        found = []
        cdef i64 set_index
        cdef int way, position, padded = self.padded
        cdef u8* block
        cdef u16* header
        for set_index in range(self.num_sets):
            block = self.blocks + set_index * self.set_bytes
            header = self._header(block)
            for position in range(header[1] - 1, -1, -1):
                way = (header[0] + position) % self.ways
                found.append((((<u32*> block)[way] * self.num_sets + set_index) * self.line,
                              bool((<u32*> (block + 4 * padded))[way] & 1)))
        return found


cdef enum:
    CHANNEL_FIELDS = 9  # read, write bytes; busy, waiting cycles; bytes at five shares of writes


@cython.final
cdef class MemorySystem:
    """Private caches, LLC and DRAM channels of one machine, with per-source DRAM accounting."""
    cdef list private
    cdef _Cache llc
    cdef bint exact_channels
    cdef i64 max_line_number
    cdef bint inclusive
    cdef bint nontemporal
    cdef i64 line
    cdef int channels
    cdef i64 interleave
    cdef i64 stride
    cdef i64* reads_by_source
    cdef i64* writes_by_source
    cdef int sources_capacity
    cdef double* channel_stats  # per channel: CHANNEL_FIELDS
    cdef double* channel_free
    cdef double* busy_closed  # per channel: busy cycles before its current busy stretch
    cdef double* stretch_start  # per channel: when its current busy stretch began
    # per channel: its queue, oldest first, as (begin, finish, bytes) triples from `head` on, and
    # the bytes of the transfers that had finished by the latest step (the queue no longer holds them)
    cdef double** transfers
    cdef int* transfers_head
    cdef int* transfers_count
    cdef int* transfers_capacity
    cdef double* transferred_bytes
    cdef double rates[5]  # bytes per cycle one channel sustains, by the share of writes
    cdef double latency_cycles
    cdef double* tile_reads
    cdef double* tile_writes
    cdef double spread_reads, spread_writes
    cdef i64 private_hits, llc_hits, dram_reads, dram_writes
    cdef _Evictions access_evictions, access_misses, fill_evictions, fill_misses
    cdef _Evictions install_evictions, dropped

    def __cinit__(self, int cores, i64 private_size_bytes, i64 llc_size_bytes, bint inclusive,
                  bint nontemporal, i64 line, int channels, i64 interleave, rates,
                  double latency_cycles, str caches="range", int private_ways=0, int llc_ways=0):
        cdef int i
        if len(rates) != 5 or min(rates) <= 0:
            raise ValueError(f"rates: need five positive rates (writes 0, 1/4, 1/2, 3/4, all), got {rates}")
        self.max_line_number = 1LL << 60
        if caches == "line":
            self.private = [LineCache(private_size_bytes, private_ways, line, False)
                            for i in range(cores)]
            self.llc = LineCache(llc_size_bytes, llc_ways, line, inclusive)
            self.max_line_number = min(self.private[0].max_line_number, self.llc.max_line_number)
        else:
            self.private = [RangeCache(private_size_bytes, False) for i in range(cores)]
            self.llc = RangeCache(llc_size_bytes, inclusive)
        self.llc.tracks_arrival = True
        self.exact_channels = caches == "line"
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
        self.channel_stats = <double*> calloc(channels * CHANNEL_FIELDS, sizeof(double))
        self.channel_free = <double*> malloc(channels * sizeof(double))
        self.busy_closed = <double*> calloc(channels, sizeof(double))
        self.stretch_start = <double*> calloc(channels, sizeof(double))
        self.transfers = <double**> calloc(channels, sizeof(double*))
        self.transfers_head = <int*> calloc(channels, sizeof(int))
        self.transfers_count = <int*> calloc(channels, sizeof(int))
        self.transfers_capacity = <int*> calloc(channels, sizeof(int))
        self.transferred_bytes = <double*> calloc(channels, sizeof(double))
        for i in range(5):
            self.rates[i] = rates[i]
        self.latency_cycles = latency_cycles
        self.tile_reads = <double*> malloc(channels * sizeof(double))
        self.tile_writes = <double*> malloc(channels * sizeof(double))
        for i in range(channels):
            self.channel_free[i] = 0
        # reused buffers, one per call depth (no call below re-enters one above)
        self.access_evictions = _Evictions()
        self.access_misses = _Evictions()
        self.fill_evictions = _Evictions()
        self.fill_misses = _Evictions()
        self.install_evictions = _Evictions()
        self.dropped = _Evictions()

    def __dealloc__(self):
        cdef int i
        free(self.reads_by_source)
        free(self.writes_by_source)
        free(self.channel_stats)
        free(self.channel_free)
        free(self.busy_closed)
        free(self.stretch_start)
        if self.transfers != NULL:
            for i in range(self.channels):
                free(self.transfers[i])
        free(self.transfers)
        free(self.transfers_head)
        free(self.transfers_count)
        free(self.transfers_capacity)
        free(self.transferred_bytes)
        free(self.tile_reads)
        free(self.tile_writes)

    cdef void _grow_sources(self, int source) noexcept:
        cdef int old = self.sources_capacity, i
        while source >= self.sources_capacity:
            self.sources_capacity *= 2
        self.reads_by_source = <i64*> realloc(self.reads_by_source, self.sources_capacity * sizeof(i64))
        self.writes_by_source = <i64*> realloc(self.writes_by_source,
                                                self.sources_capacity * sizeof(i64))
        for i in range(old, self.sources_capacity):
            self.reads_by_source[i] = 0
            self.writes_by_source[i] = 0

    cdef void _map(self, i64 low, i64 high, double* per_channel) noexcept:
        """Add the bytes of [low, high) to the channels their interleave chunks map to.

        Whole chunks are counted per channel rather than one by one (line fidelity maps all of
        its DRAM traffic here); the sums are integers below 2**53, so doubles add them exactly
        in any order.
        """
        cdef i64 interleave = self.interleave, chunk, last, whole, rounds
        cdef int channels = self.channels, channel, i
        if low >= high:
            return
        chunk = low // interleave
        last = (high - 1) // interleave
        channel = <int> (chunk % channels)
        if chunk == last:
            per_channel[channel] += high - low
            return
        per_channel[channel] += (chunk + 1) * interleave - low
        per_channel[last % channels] += high - last * interleave
        whole = last - chunk - 1  # the chunks in between
        rounds = whole // channels
        if rounds:
            for i in range(channels):
                per_channel[i] += rounds * interleave
        for i in range(whole - rounds * channels):
            channel += 1
            if channel == channels:
                channel = 0
            per_channel[channel] += interleave

    cdef void _dram_read(self, i64 low, i64 high, int source) noexcept:
        if source >= self.sources_capacity:
            self._grow_sources(source)
        self.reads_by_source[source] += high - low
        self.dram_reads += high - low
        if high - low >= self.stride and not self.exact_channels:
            self.spread_reads += high - low
        else:
            self._map(low, high, self.tile_reads)

    cdef void _dram_write(self, i64 low, i64 high, int source) noexcept:
        if source >= self.sources_capacity:
            self._grow_sources(source)
        self.writes_by_source[source] += high - low
        self.dram_writes += high - low
        if high - low >= self.stride and not self.exact_channels:
            self.spread_writes += high - low
        else:
            self._map(low, high, self.tile_writes)

    cdef void _handle_llc_evictions(self, _Evictions evictions) noexcept:
        cdef int i, j, k
        cdef _Cache cache
        cdef _Evictions dropped = self.dropped
        for i in range(evictions.count):
            if evictions.items[i].dirty:
                self._dram_write(evictions.items[i].start, evictions.items[i].stop,
                                 evictions.items[i].owner)
            if self.inclusive:
                for k in range(len(self.private)):
                    cache = <_Cache> self.private[k]
                    dropped.count = 0
                    cache.invalidate(evictions.items[i].start, evictions.items[i].stop, dropped)
                    for j in range(dropped.count):
                        if dropped.items[j].dirty:
                            self._dram_write(dropped.items[j].start, dropped.items[j].stop,
                                             dropped.items[j].owner)

    cdef void _install(self, i64 start, i64 stop, int owner) noexcept:
        cdef _Evictions evictions = self.install_evictions
        evictions.count = 0
        self.llc.access(start, stop, 1, owner, evictions, False, None)
        self._handle_llc_evictions(evictions)

    cdef void _fill(self, i64 low, i64 high, int source) noexcept:
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

    cdef void _access(self, int core, i64 start, i64 stop, char kind, int source) noexcept:
        """Kinds: 0 a load; stores: 1 read for ownership, 2 non-temporal, 3 allocate without
        reading (bnsim.trace.dataflow's FETCH, STREAM, ALLOCATE)."""
        cdef _Cache cache = <_Cache> self.private[core]
        cdef _Evictions evictions = self.access_evictions
        cdef _Evictions misses = self.access_misses
        cdef int i
        cdef _Evictions dropped = self.dropped
        cdef i64 missed
        evictions.count = 0
        misses.count = 0
        start = start // self.line * self.line
        stop = (stop + self.line - 1) // self.line * self.line
        if kind == 2 or (kind and self.nontemporal):
            for i in range(len(self.private)):
                dropped.count = 0
                (<_Cache> self.private[i]).invalidate(start, stop, dropped)
            dropped.count = 0
            self.llc.invalidate(start, stop, dropped)
            self._dram_write(start, stop, source)
            return
        missed = cache.access(start, stop, kind != 0, source, evictions, kind != 3, misses)
        if kind != 3:
            self.private_hits += stop - start - missed
        # a line's fill (for a store: the read for ownership) comes before the evictions it
        # causes; a range longer than the cache evicts its own front, which must be read first
        for i in range(misses.count):
            self._fill(misses.items[i].start, misses.items[i].stop, source)
        for i in range(evictions.count):
            if evictions.items[i].dirty:
                self._install(evictions.items[i].start, evictions.items[i].stop,
                              evictions.items[i].owner)

    cdef void _begin(self, double now) noexcept:
        cdef int i
        self.llc.begin_step(now)
        self.private_hits = 0
        self.llc_hits = 0
        self.dram_reads = 0
        self.dram_writes = 0
        self.spread_reads = 0
        self.spread_writes = 0
        for i in range(self.channels):
            self.tile_reads[i] = 0
            self.tile_writes[i] = 0

    cdef void _retire(self, int channel, double now) noexcept:
        """Count the channel's transfers finished by `now` as done (steps come in time order, so
        every later question is about a later cycle)."""
        cdef double* queue = self.transfers[channel]
        cdef int head = self.transfers_head[channel], count = self.transfers_count[channel]
        while count and queue[3 * head + 1] <= now:
            self.transferred_bytes[channel] += queue[3 * head + 2]
            head += 1
            count -= 1
        self.transfers_head[channel] = head if count else 0
        self.transfers_count[channel] = count

    cdef void _push_transfer(self, int channel, double begin, double finish,
                             double amount) noexcept:
        cdef int head = self.transfers_head[channel], count = self.transfers_count[channel]
        cdef int capacity = self.transfers_capacity[channel]
        if head + count == capacity:
            if head > capacity // 2:  # mostly retired: move the queue to the front
                memmove(self.transfers[channel], self.transfers[channel] + 3 * head,
                        3 * count * sizeof(double))
            else:
                capacity = 2 * capacity if capacity else 64
                self.transfers[channel] = <double*> realloc(
                    self.transfers[channel], 3 * capacity * sizeof(double))
                self.transfers_capacity[channel] = capacity
                memmove(self.transfers[channel], self.transfers[channel] + 3 * head,
                        3 * count * sizeof(double))
            head = 0
            self.transfers_head[channel] = 0
        cdef double* slot = self.transfers[channel] + 3 * (head + count)
        slot[0] = begin
        slot[1] = finish
        slot[2] = amount
        self.transfers_count[channel] = count + 1

    cdef double _rate(self, double reads, double writes) noexcept:
        """What a channel sustains for this mix: the rates at the nearest shares of writes, mixed."""
        cdef double position = 4.0 * writes / (reads + writes)
        cdef int low = <int> position
        if low >= 4:
            return self.rates[4]
        return self.rates[low] + (position - low) * (self.rates[low + 1] - self.rates[low])

    cdef double _end(self, double now) noexcept:
        """Queue the reads, then the writes (posted), since `_begin`, each channel serving them at
        the rate it sustains for their mix; returns when the reads arrive."""
        cdef int i, low
        cdef double reads, writes, rate, position, begin, done = now
        cdef double* stats
        for i in range(self.channels):
            reads = self.tile_reads[i] + self.spread_reads / self.channels
            writes = self.tile_writes[i] + self.spread_writes / self.channels
            if not reads and not writes:
                continue
            self._retire(i, now)
            rate = self._rate(reads, writes)
            stats = &self.channel_stats[i * CHANNEL_FIELDS]
            if self.channel_free[i] < now:  # idle since: a new busy stretch begins
                self.busy_closed[i] += self.channel_free[i] - self.stretch_start[i]
                self.stretch_start[i] = now
                self.channel_free[i] = now
            else:
                stats[3] += self.channel_free[i] - now  # waited behind earlier traffic
            begin = self.channel_free[i]
            if reads:
                self.channel_free[i] += reads / rate
                if self.channel_free[i] + self.latency_cycles > done:
                    done = self.channel_free[i] + self.latency_cycles
            self.channel_free[i] += writes / rate
            self._push_transfer(i, begin, self.channel_free[i], reads + writes)
            stats[0] += reads
            stats[1] += writes
            stats[2] += (reads + writes) / rate
            # the bytes by the shares of writes the rates are known at, weighted as the rate is
            position = 4.0 * writes / (reads + writes)
            low = <int> position
            if low >= 4:
                stats[8] += reads + writes
            else:
                stats[4 + low] += (reads + writes) * (low + 1 - position)
                stats[5 + low] += (reads + writes) * (position - low)
        self.llc.settle(done)  # unless the caller knows better (run_kernel)
        return done

    def run_tile(self, int core, accesses, double now):
        """Run a step's (start, stop, kind, source) accesses on `core` at cycle `now`.

        Returns (private-cache hit bytes, LLC hit bytes, DRAM read bytes, cycle its DRAM reads
        arrive, cycle the in-flight lines it hit in the LLC arrive); the lines it fetched arrive
        with its DRAM reads unless `settle` says when.
        """
        cdef double done = self._run_tile(core, accesses, now)
        return TileCost(self.private_hits, self.llc_hits, self.dram_reads, done, self.llc.wait)

    def step_dram_writes(self):
        """DRAM bytes the last step wrote: its non-temporal stores and the write-backs it caused."""
        return self.dram_writes

    def settle(self, double arrival):
        """The lines the last step fetched from DRAM arrive at cycle `arrival`."""
        self.llc.settle(arrival)

    cdef double _run_tile(self, int core, object accesses, double now) except? -1.0:
        cdef i64 start, stop
        cdef int source
        self._begin(now)
        for start, stop, kind, source in accesses:
            if stop // self.line > self.max_line_number:
                raise OverflowError(f"address {stop} is beyond what the compiled line caches hold")
            self._access(core, start, stop, kind, source)
        return self._end(now)

    cdef void _advance(self, int core, StreamCursor* stream, Block* blocks, i64 target,
                       i64 line) noexcept:
        """bnsim.trace._tiles.stream_ranges in C: access the stream's bytes up to `target` taken."""
        cdef Block* block
        cdef i64 start, low, high, stop
        while stream.taken < target:
            block = &blocks[stream.first_block + stream.index]
            start = block.first + stream.outer * block.outer_stride + stream.inner * block.inner_stride
            low = start + stream.offset
            high = low + (target - stream.taken)
            stop = start + block.length
            if high < stop:
                high = (high + line - 1) // line * line
                if high > stop:
                    high = stop
            else:
                high = stop
            if high > low:
                self._access(core, low, high, stream.kind, stream.source)
            stream.taken += high - low
            stream.offset = high - start
            if stream.offset == block.length:
                stream.offset = 0
                stream.inner += 1
                if stream.inner == block.inner_count:
                    stream.inner = 0
                    stream.outer += 1
                    if stream.outer == block.outer_count:
                        stream.outer = 0
                        stream.index += 1

    def run_kernel(self, list boxes, list chunks, double start, double private_cycles,
                   double llc_cycles, double dram_cycles, list busy, i64 line, list spans=None,
                   bint dynamic=False, double write_cycles=0.0):
        """Run a kernel's boxes on the cores from cycle `start` (bnsim.sim.engine._run_boxes).

        Core k runs boxes[chunks[k]] in order, each in its number of steps; a step issues the
        next equal share of each of the box's streams (bnsim.trace._tiles.stream_ranges). The core ready
        first runs its next step (ties: the one that became ready first), so the shared levels see
        the steps in time order: the order of one SimPy process per core (tested equal). A step
        lasts the largest of its compute share, its misses' latency per byte (`*_cycles`: private
        hit, LLC hit, DRAM read) with its DRAM writes' path to the controller per byte
        (`write_cycles`: each holds a slot of the core's window), the wait for its DRAM reads and
        for lines it found in the LLC that another core's step is still fetching; its own fetches
        arrive when it ends. Adds each core's busy cycles to
        `busy` and, with `spans`, appends every step's (core, start, end); returns (cycle the last
        core finishes, FLOPs, compute cycles, memory cycles). With `dynamic`, `chunks` is ignored:
        the boxes are in launch order, and a core that is free takes the next one (the first
        `len(busy)` go to the cores in order at `start`), as a GPU's block scheduler does.
        """
        cdef int cores = len(busy) if dynamic else len(chunks), core, size = 0, i, child, parent
        cdef int num_boxes = len(boxes), next_box = 0
        cdef bint active
        cdef int num_streams = 0, num_blocks = 0, s, b
        cdef i64 sequence = 0, flops = 0, step, highest = 0, last_address
        cdef double now, finished = start, memory, duration, compute, done
        cdef double compute_total = 0.0, memory_total = 0.0
        cdef WorkBox* work
        cdef WorkBox* box
        cdef StreamCursor* streams
        cdef Block* blocks
        for item in boxes:
            num_streams += len(item[3])
            for stream in item[3]:
                num_blocks += len(stream[2])
        work = <WorkBox*> malloc((num_boxes + 1) * sizeof(WorkBox))
        streams = <StreamCursor*> malloc((num_streams + 1) * sizeof(StreamCursor))
        blocks = <Block*> malloc((num_blocks + 1) * sizeof(Block))
        cdef double* ready = <double*> malloc(cores * sizeof(double))
        cdef i64* order = <i64*> malloc(cores * sizeof(i64))
        cdef int* who = <int*> malloc(cores * sizeof(int))
        cdef i64* position = <i64*> malloc(cores * sizeof(i64))
        cdef i64* steps_done = <i64*> malloc(cores * sizeof(i64))
        cdef i64* stop = <i64*> malloc(cores * sizeof(i64))
        cdef double* core_busy = <double*> malloc(cores * sizeof(double))
        try:
            s = b = 0
            for i in range(num_boxes):
                item = boxes[i]
                work[i].cycles = item[0]
                work[i].flops = item[1]
                work[i].steps = item[2]
                work[i].first_stream = s
                work[i].num_streams = len(item[3])
                for stream in item[3]:
                    streams[s].kind = stream[0]
                    streams[s].source = stream[1]
                    streams[s].total = stream[3]
                    streams[s].first_block = b
                    streams[s].num_blocks = len(stream[2])
                    streams[s].index = 0
                    streams[s].outer = 0
                    streams[s].inner = 0
                    streams[s].offset = 0
                    streams[s].taken = 0
                    if stream[1] >= self.sources_capacity:
                        self._grow_sources(stream[1])
                    for block in stream[2]:
                        blocks[b].first, blocks[b].length = block[0], block[1]
                        blocks[b].inner_count, blocks[b].inner_stride = block[2], block[3]
                        blocks[b].outer_count, blocks[b].outer_stride = block[4], block[5]
                        last_address = (blocks[b].first + blocks[b].length
                                        + (blocks[b].inner_count - 1) * blocks[b].inner_stride
                                        + (blocks[b].outer_count - 1) * blocks[b].outer_stride)
                        if last_address > highest:
                            highest = last_address
                        b += 1
                    s += 1
            if highest // self.line > self.max_line_number:
                raise OverflowError(f"address {highest} is beyond what the compiled line caches hold")
            for core in range(cores):
                steps_done[core] = 0
                core_busy[core] = busy[core]
                if dynamic:  # each free core takes the next box when it is ready
                    position[core] = stop[core] = 0
                    active = core < num_boxes
                else:
                    chunk = chunks[core]
                    position[core] = chunk.start
                    stop[core] = chunk.stop
                    active = chunk.stop > chunk.start
                if active:  # all start now, in core order: already a heap
                    ready[size] = start
                    order[size] = sequence
                    who[size] = core
                    sequence += 1
                    size += 1
            while size:
                now, core = ready[0], who[0]
                if dynamic and position[core] == stop[core] and next_box < num_boxes:
                    position[core] = next_box
                    stop[core] = next_box + 1
                    next_box += 1
                if position[core] == stop[core]:
                    finished = now  # cores leave in time order: the last one finishes last
                    size -= 1
                    ready[0], order[0], who[0] = ready[size], order[size], who[size]
                else:
                    box = &work[position[core]]
                    step = steps_done[core]
                    self._begin(now)
                    for s in range(box.first_stream, box.first_stream + box.num_streams):
                        self._advance(core, &streams[s], blocks,
                                      streams[s].total * (step + 1) // box.steps, line)
                    done = self._end(now)
                    memory = (self.private_hits * private_cycles + self.llc_hits * llc_cycles
                              + self.dram_reads * dram_cycles + self.dram_writes * write_cycles)
                    if step:  # the stream is under way: its latency was paid by the first step
                        done -= self.latency_cycles
                    if done - now > memory:
                        memory = done - now
                    if self.llc.wait - now > memory:  # lines other cores are still fetching
                        memory = self.llc.wait - now
                    self.llc.settle(now + memory)  # what this step fetched is there when it is
                    compute = box.cycles / box.steps
                    duration = compute
                    if memory > duration:
                        duration = memory
                    if 1.0 > duration:
                        duration = 1.0
                    flops += box.flops * (step + 1) // box.steps - box.flops * step // box.steps
                    compute_total += compute
                    memory_total += memory
                    core_busy[core] += duration
                    if spans is not None:
                        spans.append((core, now, now + duration))
                    if step + 1 == box.steps:
                        steps_done[core] = 0
                        position[core] += 1
                    else:
                        steps_done[core] = step + 1
                    ready[0], order[0] = now + duration, sequence  # the root moves down
                    sequence += 1
                # sift the root down
                i = 0
                while True:
                    child = 2 * i + 1
                    if child >= size:
                        break
                    if child + 1 < size and (
                        ready[child + 1] < ready[child]
                        or (ready[child + 1] == ready[child] and order[child + 1] < order[child])
                    ):
                        child += 1
                    if ready[child] < ready[i] or (ready[child] == ready[i] and order[child] < order[i]):
                        ready[i], ready[child] = ready[child], ready[i]
                        order[i], order[child] = order[child], order[i]
                        who[i], who[child] = who[child], who[i]
                        i = child
                    else:
                        break
            for core in range(cores):
                busy[core] = core_busy[core]
        finally:
            free(work)
            free(streams)
            free(blocks)
            free(ready)
            free(order)
            free(who)
            free(position)
            free(steps_done)
            free(stop)
            free(core_busy)
        return finished, flops, compute_total, memory_total

    def write(self, int core, i64 start, i64 stop, int source, double now, int kind=1):
        """One store of `kind` (bnsim.trace.dataflow's FETCH, STREAM, ALLOCATE) outside a tile (a
        reduced tensor written after the tiles)."""
        self._begin(now)
        self._access(core, start, stop, kind, source)
        self._end(now)

    def flush(self, double now):
        """Write every dirty line back (end of the iteration)."""
        cdef int k, i
        cdef _Evictions dropped
        self._begin(now)
        for k in range(len(self.private)):
            dropped = _Evictions()
            (<_Cache> self.private[k]).flush(dropped)
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

    def llc_used_bytes(self):
        """Bytes the LLC holds now."""
        return self.llc.held_bytes()

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
        return [self.channel_stats[i * CHANNEL_FIELDS] + self.channel_stats[i * CHANNEL_FIELDS + 1]
                for i in range(self.channels)]

    def channel_transferred(self, double cycle):
        """Per channel, the bytes it has transferred by `cycle` (no earlier than the last step):
        queued bytes less those still waiting or in transfer, each transfer at its own rate."""
        cdef int i, k
        cdef double done, begin, finish
        cdef double* transfer
        found = []
        for i in range(self.channels):
            done = self.transferred_bytes[i]
            for k in range(self.transfers_count[i]):
                transfer = self.transfers[i] + 3 * (self.transfers_head[i] + k)
                begin, finish = transfer[0], transfer[1]
                if finish <= cycle:
                    done += transfer[2]
                elif begin < cycle:
                    done += transfer[2] * (cycle - begin) / (finish - begin)
                else:
                    break
            found.append(done)
        return found

    def channel_busy_until(self, double cycle):
        """Per channel, the cycles it has been busy by `cycle` (no earlier than the last step)."""
        cdef int i
        cdef double open_part
        found = []
        for i in range(self.channels):
            open_part = min(cycle, self.channel_free[i]) - self.stretch_start[i]
            found.append(self.busy_closed[i] + (open_part if open_part > 0 else 0.0))
        return found

    def channel_statistics(self):
        """Per channel so far: (read bytes, write bytes, busy cycles, cycles its traffic waited
        behind earlier traffic, and its bytes at each of the five shares of writes the rates
        are given at)."""
        return [tuple(self.channel_stats[i * CHANNEL_FIELDS + k] for k in range(CHANNEL_FIELDS))
                for i in range(self.channels)]

    def cache_stats(self):
        """{"llc": CacheBytes, "private": CacheBytes}: each level's bytes read, written, hit,
        missed and written back, summed over its instances."""
        cdef _Cache cache
        private = [0, 0, 0, 0, 0]
        for cache in self.private:
            private[0] += cache.read_bytes
            private[1] += cache.write_bytes
            private[2] += cache.hit_bytes
            private[3] += cache.miss_bytes
            private[4] += cache.writeback_bytes
        llc = (self.llc.read_bytes, self.llc.write_bytes, self.llc.hit_bytes, self.llc.miss_bytes,
               self.llc.writeback_bytes)
        return {"llc": CacheBytes(*llc), "private": CacheBytes(*private)}


def earlier_and_later_into(const i64[::1] keys, const i64[::1] weights, i64[::1] total):
    """total[p] = the sum of weights[j] over j < p with keys[j] > keys[p] (keys ≥ 0; the weights'
    sum fits in an int64): all weights so far, less those with keys up to keys[p], which a Fenwick
    tree over the keys holds."""
    cdef Py_ssize_t count = keys.shape[0], p
    cdef i64 size = 0, index, below, seen = 0
    for p in range(count):
        if keys[p] + 1 > size:
            size = keys[p] + 1
    cdef i64* tree = <i64*> calloc(size + 1, sizeof(i64))
    if tree == NULL:
        raise MemoryError(f"no memory for a Fenwick tree of {size} keys")
    for p in range(count):
        below = 0
        index = keys[p] + 1
        while index > 0:
            below += tree[index]
            index -= index & -index
        total[p] = seen - below
        seen += weights[p]
        index = keys[p] + 1
        while index <= size:
            tree[index] += weights[p]
            index += index & -index
    free(tree)
