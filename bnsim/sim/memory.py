"""The memory system: a private cache per core, the shared LLC, address-interleaved DRAM channels.

Accesses are rounded to whole lines. A core's access goes through its private cache (the last
private level of the machine; L1 reuse happens inside a tile and is part of the kernel's
efficiency), misses are filled from the LLC, LLC misses from DRAM. Writes allocate: a store miss
first reads the line (read for ownership) unless the library uses non-temporal stores, which bypass
the caches. Dirty lines evicted from a private cache are installed in the LLC; dirty lines evicted
from the LLC, or flushed at the end, are written to DRAM. An inclusive LLC back-invalidates private
copies of what it evicts; otherwise the levels are non-inclusive and non-exclusive (a fill lands in
both). Every DRAM byte is charged to a source: reads to the accessor, write-backs to the last
writer.

Fast fidelity holds the caches as byte ranges (bnsim.sim.cache: fully associative, exact line LRU
at range cost) and spreads a transfer of a whole interleaving period or more evenly over the
channels; line fidelity holds them as set-associative lines (bnsim.sim.linecache) and maps every
byte to its channel. `memory_system(machine, fidelity)` returns the compiled twin
(bnsim.sim._fastmemory) when it was built, else this pure-Python one; both give identical numbers.
Imports bnsim.hw, bnsim.sim.cache and bnsim.sim.linecache.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from bnsim.errors import InfeasibleError
from bnsim.hw import Machine
from bnsim.sim.cache import CacheStats, Eviction, RangeCache
from bnsim.sim.linecache import LineCache

CacheModel = Literal["range", "line"]

# (private-cache hit bytes, LLC hit bytes, DRAM read bytes, cycle the DRAM reads arrive)
TileCost = tuple[int, int, int, float]
_FETCH, _STREAM, _ALLOCATE = 1, 2, 3  # store kinds (bnsim.dataflow)

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Tally:
    """LLC and DRAM bytes of the accesses since the last `_begin`.

    DRAM bytes are kept per channel for transfers shorter than one interleaving period (channels ×
    interleave bytes) and as one total for longer ones, which fine interleaving spreads evenly.
    """

    private_hit_bytes: int = 0
    llc_hit_bytes: int = 0
    dram_read_bytes: int = 0
    dram_write_bytes: int = 0
    channel_reads: list[float] = field(default_factory=list)
    channel_writes: list[float] = field(default_factory=list)
    spread_reads: float = 0.0
    spread_writes: float = 0.0


LINE_STATE_BYTES = (
    12  # per cached line: tag, owner and dirty bit, two links (bnsim/sim/_fastmemory.pyx)
)
MAX_LINE_STATE_BYTES = 4 << 30


def memory_system(machine: Machine, caches: CacheModel = "range", *, compiled: bool = True) -> Any:
    """The memory system of `machine`: compiled if available (and asked for), else pure Python.

    `caches` is "range" (fast fidelity) or "line" (line fidelity).

    Raises:
        InfeasibleError: line caches whose state would not fit in this computer's memory.
    """
    if caches == "line":
        lines = (
            machine.cores.count * machine.private_caches()[-1].size_bytes + machine.llc.size_bytes
        ) // machine.llc.block_bytes
        if lines * LINE_STATE_BYTES > MAX_LINE_STATE_BYTES:
            raise InfeasibleError(
                f"line fidelity would hold {lines:.3g} cache lines ({machine.name}: "
                f"{machine.cores.count} private caches and the LLC), about "
                f"{lines * LINE_STATE_BYTES / 2**30:.0f} GiB of cache state; use --fidelity fast "
                "(its caches hold byte ranges, not lines)"
            )
    arguments = (
        machine.cores.count,
        machine.private_caches()[-1].size_bytes,
        machine.llc.size_bytes,
        machine.llc.inclusive,
        machine.compute.nontemporal_stores == "always",
        machine.llc.block_bytes,
        machine.dram.channels,
        machine.dram.interleave_bytes,
        machine.dram.channel_bandwidth_bytes_per_second
        * machine.dram.efficiency
        / machine.cores.clock_hz,
        machine.dram.latency_s * machine.cores.clock_hz,
        caches,
        machine.private_caches()[-1].ways,
        machine.llc.ways,
    )
    if compiled:
        try:
            from bnsim.sim._fastmemory import FastMemorySystem  # noqa: PLC0415 (optional build)
        except ImportError:
            _log.info("compiled memory model not built; using the pure-Python one (slower)")
        else:
            return FastMemorySystem(*arguments)
    return MemorySystem(*arguments)


class MemorySystem:
    """Private caches, LLC and DRAM of one machine, with per-source DRAM accounting."""

    def __init__(
        self,
        cores: int,
        private_bytes: int,
        llc_bytes: int,
        inclusive: bool,
        nontemporal: bool,
        line: int,
        channels: int,
        interleave: int,
        bytes_per_cycle: float,
        latency_cycles: float,
        caches: CacheModel = "range",
        private_ways: int = 0,
        llc_ways: int = 0,
    ) -> None:
        self.line = line
        self.private: list[RangeCache] | list[LineCache]
        if caches == "line":
            self.private = [
                LineCache(private_bytes, private_ways, line, report_clean=False)
                for _ in range(cores)
            ]
            self.llc: RangeCache | LineCache = LineCache(
                llc_bytes, llc_ways, line, report_clean=inclusive
            )
        else:
            self.private = [
                RangeCache(capacity_bytes=private_bytes, report_clean=False) for _ in range(cores)
            ]
            self.llc = RangeCache(capacity_bytes=llc_bytes, report_clean=inclusive)
        self.inclusive = inclusive
        # line fidelity maps every byte to its channel; fast fidelity spreads long transfers evenly
        self.exact_channels = caches == "line"
        self.nontemporal = nontemporal
        self.channels = channels
        self.interleave = interleave
        self.stride = interleave * channels
        self.read_bytes: dict[int, int] = {}  # source → DRAM bytes read for it
        self.write_bytes: dict[int, int] = {}  # source → DRAM bytes written for it
        self.channel_totals = [0.0] * channels
        self.channel_free = [0.0] * channels  # cycle each channel finishes its queued transfers
        self.bytes_per_cycle = bytes_per_cycle  # sustained, per channel
        self.latency_cycles = latency_cycles
        self._tally = _Tally()

    def run_tile(
        self, core: int, accesses: Iterable[tuple[int, int, int, int]], now: float
    ) -> TileCost:
        """Run a step's (start, stop, kind, source) accesses on `core` at cycle `now`.

        Kinds: 0 a load; stores: 1 read for ownership, 2 non-temporal, 3 allocate without reading
        (bnsim.dataflow's FETCH, STREAM, ALLOCATE).

        Its DRAM reads queue on their channels first come, first served, then its writes (posted:
        they occupy the channels, but nobody waits for them).
        """
        self._begin()
        for start, stop, write, source in accesses:
            self._access(core, start, stop, write, source)
        return self._end(now)

    def write(self, core: int, start: int, stop: int, source: int, now: float) -> None:
        """One write outside a tile (a reduced tensor, written after the tiles)."""
        self._begin()
        self._access(core, start, stop, _FETCH, source)
        self._end(now)

    def llc_used_bytes(self) -> int:
        """Bytes the LLC holds now."""
        return self.llc.used_bytes

    def flush(self, now: float) -> None:
        """Write every dirty line back to DRAM (the end of the iteration)."""
        self._begin()
        for cache in self.private:
            for eviction in cache.flush():
                if eviction.dirty:
                    self._install_in_llc(eviction)
        for eviction in self.llc.flush():
            if eviction.dirty:
                self._dram_write(eviction.start, eviction.stop, eviction.owner)
        self._end(now)

    def source_bytes(self) -> tuple[dict[int, int], dict[int, int]]:
        """DRAM bytes read and written per attribution source."""
        return dict(self.read_bytes), dict(self.write_bytes)

    def channel_bytes(self) -> list[float]:
        """DRAM bytes per channel so far."""
        return list(self.channel_totals)

    def cache_stats(self) -> dict[str, tuple[int, int, int, int, int]]:
        """Per level: read, write, hit, miss and write-back bytes (private caches summed)."""
        private = [0, 0, 0, 0, 0]
        for cache in self.private:
            for index, value in enumerate(_row(cache.stats)):
                private[index] += value
        return {
            "llc": _row(self.llc.stats),
            "private": (private[0], private[1], private[2], private[3], private[4]),
        }

    # --- internals -----------------------------------------------------------------------------

    def _begin(self) -> None:
        self._tally = _Tally(
            channel_reads=[0.0] * self.channels, channel_writes=[0.0] * self.channels
        )

    def _end(self, now: float) -> TileCost:
        """Queue the reads, then the writes, of the accesses since `_begin` on the channels."""
        tally = self._tally
        free, rate = self.channel_free, self.bytes_per_cycle
        done = now
        for channel in range(self.channels):
            reads = tally.channel_reads[channel] + tally.spread_reads / self.channels
            if reads:
                free[channel] = max(now, free[channel]) + reads / rate
                done = max(done, free[channel] + self.latency_cycles)
            self.channel_totals[channel] += reads
        for channel in range(self.channels):
            writes = tally.channel_writes[channel] + tally.spread_writes / self.channels
            if writes:
                free[channel] = max(now, free[channel]) + writes / rate
            self.channel_totals[channel] += writes
        return tally.private_hit_bytes, tally.llc_hit_bytes, tally.dram_read_bytes, done

    def _access(self, core: int, start: int, stop: int, kind: int, source: int) -> None:
        line = self.line
        start, stop = start // line * line, -(-stop // line) * line
        if kind == _STREAM or (kind and self.nontemporal):
            self._stream_out(start, stop, source)
            return
        evictions: list[Eviction] = []
        misses = self.private[core].access(
            start,
            stop,
            write=bool(kind),
            owner=source,
            evictions=evictions,
            fill=kind != _ALLOCATE,  # an allocating store reads nothing
        )
        # a line's fill (for a store: the read for ownership) comes before the evictions it
        # causes; a range longer than the cache evicts its own front, which must be read first
        if kind != _ALLOCATE:
            self._tally.private_hit_bytes += stop - start - sum(high - low for low, high in misses)
        for low, high in misses:
            self._fill_from_llc(low, high, source)
        for eviction in evictions:
            if eviction.dirty:
                self._install_in_llc(eviction)

    def _fill_from_llc(self, low: int, high: int, source: int) -> None:
        evictions: list[Eviction] = []
        misses = self.llc.access(low, high, write=False, owner=source, evictions=evictions)
        missed = 0
        for miss_low, miss_high in misses:
            missed += miss_high - miss_low
            self._dram_read(miss_low, miss_high, source)
        self._tally.llc_hit_bytes += high - low - missed
        self._handle_llc_evictions(evictions)

    def _install_in_llc(self, eviction: Eviction) -> None:
        evictions: list[Eviction] = []
        self.llc.access(
            eviction.start,
            eviction.stop,
            write=True,
            owner=eviction.owner,
            evictions=evictions,
            fill=False,
        )
        self._handle_llc_evictions(evictions)

    def _handle_llc_evictions(self, evictions: list[Eviction]) -> None:
        for eviction in evictions:
            if eviction.dirty:
                self._dram_write(eviction.start, eviction.stop, eviction.owner)
            if self.inclusive:
                for cache in self.private:
                    for dropped in cache.invalidate(eviction.start, eviction.stop):
                        if dropped.dirty:
                            self._dram_write(dropped.start, dropped.stop, dropped.owner)

    def _stream_out(self, start: int, stop: int, source: int) -> None:
        """A non-temporal store: drop cached copies, write the bytes straight to DRAM."""
        for cache in (*self.private, self.llc):
            cache.invalidate(start, stop)
        self._dram_write(start, stop, source)

    def _dram_read(self, low: int, high: int, source: int) -> None:
        self.read_bytes[source] = self.read_bytes.get(source, 0) + high - low
        self._tally.dram_read_bytes += high - low
        if high - low >= self.stride and not self.exact_channels:
            self._tally.spread_reads += high - low
        else:
            self._map(low, high, self._tally.channel_reads)

    def _dram_write(self, low: int, high: int, source: int) -> None:
        self.write_bytes[source] = self.write_bytes.get(source, 0) + high - low
        self._tally.dram_write_bytes += high - low
        if high - low >= self.stride and not self.exact_channels:
            self._tally.spread_writes += high - low
        else:
            self._map(low, high, self._tally.channel_writes)

    def _map(self, low: int, high: int, per_channel: list[float]) -> None:
        """Add the bytes of a short transfer to the channels its addresses interleave over."""
        interleave, channels = self.interleave, self.channels
        while low < high:
            chunk_end = min(high, (low // interleave + 1) * interleave)
            per_channel[(low // interleave) % channels] += chunk_end - low
            low = chunk_end


def _row(stats: CacheStats) -> tuple[int, int, int, int, int]:
    return (
        stats.read_bytes,
        stats.write_bytes,
        stats.hit_bytes,
        stats.miss_bytes,
        stats.writeback_bytes,
    )
