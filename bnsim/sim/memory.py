"""The memory system: a private cache per core, the shared LLC, address-interleaved DRAM channels.

Accesses are rounded to whole lines. A core's access goes through its private cache (the last
private level of the machine; L1 reuse is inside a tile and part of the kernel's efficiency), misses
are filled from the LLC, LLC misses from DRAM. Writes allocate: a store miss first reads the line
(read for ownership) unless the library uses non-temporal stores, which bypass the caches. Dirty
lines evicted from a private cache are installed in the LLC; dirty lines evicted from the LLC, or
flushed at the end, are written to DRAM. `inclusive` LLCs back-invalidate private copies of what
they evict; otherwise the levels are non-inclusive and non-exclusive (a fill lands in both). Every
DRAM byte is charged to a source: reads to the accessor, write-backs to the last writer. DRAM
channels are next-free-time counters. Imports bnsim.hw and bnsim.sim.cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bnsim.hw import Machine
from bnsim.sim.cache import CacheStats, Eviction, RangeCache


@dataclass(slots=True)
class AccessCost:
    """What one tile's accesses cost the memory system.

    DRAM bytes are kept per channel for transfers shorter than one interleaving period (channels ×
    interleave bytes) and as one total for longer ones, which fine interleaving spreads evenly.
    """

    llc_hit_bytes: int = 0
    dram_read_bytes: int = 0
    dram_write_bytes: int = 0
    channel_reads: list[float] = field(default_factory=list)  # short transfers, bytes per channel
    channel_writes: list[float] = field(default_factory=list)
    spread_reads: float = 0.0  # long transfers, bytes over all channels
    spread_writes: float = 0.0

    def channel_read_bytes(self, channel: int) -> float:
        """Read bytes of one channel."""
        return self.channel_reads[channel] + self.spread_reads / len(self.channel_reads)

    def channel_write_bytes(self, channel: int) -> float:
        """Write bytes of one channel."""
        return self.channel_writes[channel] + self.spread_writes / len(self.channel_writes)


class MemorySystem:
    """Private caches, LLC and DRAM of one machine, with per-source DRAM accounting."""

    def __init__(self, machine: Machine, num_cores: int | None = None) -> None:
        cores = num_cores if num_cores is not None else machine.cores.count
        private = machine.private_caches()[-1]
        self.line = machine.llc.block_bytes
        self.private = [
            RangeCache(capacity_bytes=private.size_bytes, report_clean=False) for _ in range(cores)
        ]
        self.inclusive = machine.llc.inclusive
        self.llc = RangeCache(capacity_bytes=machine.llc.size_bytes, report_clean=self.inclusive)
        self.nontemporal = machine.compute.nontemporal_stores
        self.channels = machine.dram.channels
        self.interleave = machine.dram.interleave_bytes
        self.read_bytes: dict[int, int] = {}  # source → DRAM bytes read for it
        self.write_bytes: dict[int, int] = {}  # source → DRAM bytes written for it
        self.channel_bytes = [0.0] * self.channels
        self.stride = self.interleave * self.channels

    def new_cost(self) -> AccessCost:
        """An empty cost accumulator sized for this machine's channels."""
        return AccessCost(channel_reads=[0.0] * self.channels, channel_writes=[0.0] * self.channels)

    def access(
        self, core: int, start: int, stop: int, write: bool, source: int, cost: AccessCost
    ) -> None:
        """One core touches [start, stop); adds the cost to `cost`."""
        line = self.line
        start, stop = start // line * line, -(-stop // line) * line
        if write and self.nontemporal:
            self._stream_out(start, stop, source, cost)
            return
        evictions: list[Eviction] = []
        misses = self.private[core].access(
            start, stop, write=write, owner=source, evictions=evictions
        )
        for eviction in evictions:
            if eviction.dirty:
                self._install_in_llc(eviction, cost)
        for low, high in misses:
            self._fill_from_llc(low, high, source, cost)

    def flush(self, cost: AccessCost) -> None:
        """Write every dirty line back to DRAM (the end of the iteration)."""
        for cache in self.private:
            for eviction in cache.flush():
                if eviction.dirty:
                    self._install_in_llc(eviction, cost)
        for eviction in self.llc.flush():
            if eviction.dirty:
                self._dram_write(eviction.start, eviction.stop, eviction.owner, cost)

    def private_stats(self) -> CacheStats:
        """The private caches' counters, summed over cores."""
        total = CacheStats()
        for cache in self.private:
            for name in CacheStats.__slots__:
                setattr(total, name, getattr(total, name) + getattr(cache.stats, name))
        return total

    # --- internals -----------------------------------------------------------------------------

    def _fill_from_llc(self, low: int, high: int, source: int, cost: AccessCost) -> None:
        evictions: list[Eviction] = []
        misses = self.llc.access(low, high, write=False, owner=source, evictions=evictions)
        missed = 0
        for miss_low, miss_high in misses:
            missed += miss_high - miss_low
            self._dram_read(miss_low, miss_high, source, cost)
        cost.llc_hit_bytes += high - low - missed
        self._handle_llc_evictions(evictions, cost)

    def _install_in_llc(self, eviction: Eviction, cost: AccessCost) -> None:
        evictions: list[Eviction] = []
        self.llc.access(
            eviction.start,
            eviction.stop,
            write=True,
            owner=eviction.owner,
            evictions=evictions,
            fill=False,
        )
        self._handle_llc_evictions(evictions, cost)

    def _handle_llc_evictions(self, evictions: list[Eviction], cost: AccessCost) -> None:
        for eviction in evictions:
            if eviction.dirty:
                self._dram_write(eviction.start, eviction.stop, eviction.owner, cost)
            if self.inclusive:
                for cache in self.private:
                    for dropped in cache.invalidate(eviction.start, eviction.stop):
                        if dropped.dirty:
                            self._dram_write(dropped.start, dropped.stop, dropped.owner, cost)

    def _stream_out(self, start: int, stop: int, source: int, cost: AccessCost) -> None:
        """A non-temporal store: drop cached copies, write the bytes straight to DRAM."""
        for cache in (*self.private, self.llc):
            cache.invalidate(start, stop)
        self._dram_write(start, stop, source, cost)

    def _dram_read(self, low: int, high: int, source: int, cost: AccessCost) -> None:
        self.read_bytes[source] = self.read_bytes.get(source, 0) + high - low
        cost.dram_read_bytes += high - low
        if high - low >= self.stride:
            cost.spread_reads += high - low
        else:
            self._map(low, high, cost.channel_reads)

    def _dram_write(self, low: int, high: int, source: int, cost: AccessCost) -> None:
        self.write_bytes[source] = self.write_bytes.get(source, 0) + high - low
        cost.dram_write_bytes += high - low
        if high - low >= self.stride:
            cost.spread_writes += high - low
        else:
            self._map(low, high, cost.channel_writes)

    def _map(self, low: int, high: int, per_channel: list[float]) -> None:
        """Add the bytes of a short transfer to the channels its addresses interleave over."""
        interleave, channels = self.interleave, self.channels
        while low < high:
            chunk_end = min(high, (low // interleave + 1) * interleave)
            per_channel[(low // interleave) % channels] += chunk_end - low
            low = chunk_end

    def account(self, cost: AccessCost) -> None:
        """Add a tile's DRAM bytes to the per-channel totals."""
        for channel in range(self.channels):
            self.channel_bytes[channel] += cost.channel_read_bytes(channel) + (
                cost.channel_write_bytes(channel)
            )
