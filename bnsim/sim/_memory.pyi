"""Type stub of the compiled memory model (bnsim/sim/_memory.pyx)."""

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from numpy.typing import NDArray

class TileCost(NamedTuple):
    """What a step cost the memory system."""

    private_hit_bytes: int
    llc_hit_bytes: int
    dram_read_bytes: int
    reads_done_cycle: float  # when its DRAM reads arrive
    llc_wait_cycle: float  # when the in-flight lines it hit in the LLC arrive

class CacheBytes(NamedTuple):
    """One cache level's byte counters, summed over its instances."""

    read_bytes: int
    write_bytes: int
    hit_bytes: int
    miss_bytes: int
    writeback_bytes: int

Range = tuple[int, int, bool, int]  # (start, stop, dirty, owner)

class _Cache:
    report_clean: bool
    tracks_arrival: bool
    wait: float
    read_bytes: int
    write_bytes: int
    hit_bytes: int
    miss_bytes: int
    writeback_bytes: int
    def py_access(
        self, start: int, stop: int, write: bool, owner: int, fill: bool = True
    ) -> tuple[list[tuple[int, int]], list[Range]]: ...
    def py_invalidate(self, start: int, stop: int) -> list[Range]: ...
    def py_flush(self) -> list[Range]: ...
    def begin_step(self, now: float) -> None: ...
    def step_dram_writes(self) -> int: ...
    def settle(self, arrival: float) -> None: ...

class RangeCache(_Cache):
    size_bytes: int
    used_bytes: int
    def __init__(self, size_bytes: int, report_clean: bool = True) -> None: ...
    def contents(self) -> list[tuple[int, int, bool]]: ...

class LineCache(_Cache):
    def __init__(
        self, size_bytes: int, ways: int, line: int, report_clean: bool = True
    ) -> None: ...
    @property
    def used_bytes(self) -> int: ...
    def lines(self) -> list[tuple[int, bool]]: ...

class MemorySystem:
    def __init__(
        self,
        cores: int,
        private_size_bytes: int,
        llc_size_bytes: int,
        inclusive: bool,
        nontemporal: bool,
        line: int,
        channels: int,
        interleave: int,
        rates: Sequence[float],
        latency_cycles: float,
        caches: str = "range",
        private_ways: int = 0,
        llc_ways: int = 0,
    ) -> None: ...
    def run_tile(
        self, core: int, accesses: Iterable[tuple[int, int, int, int]], now: float
    ) -> TileCost: ...
    def settle(self, arrival: float) -> None: ...
    def write(
        self, core: int, start: int, stop: int, source: int, now: float, kind: int = 1
    ) -> None: ...
    def flush(self, now: float) -> None: ...
    def llc_used_bytes(self) -> int: ...
    def run_kernel(
        self,
        boxes: list[Any],
        chunks: list[range],
        start: float,
        private_cycles: float,
        llc_cycles: float,
        dram_cycles: float,
        busy: list[float],
        line: int,
        spans: list[tuple[int, float, float]] | None = None,
        dynamic: bool = False,
        write_cycles: float = 0.0,
    ) -> tuple[float, int, float, float]: ...
    def source_bytes(self) -> tuple[dict[int, int], dict[int, int]]: ...
    def channel_bytes(self) -> list[float]: ...
    def channel_statistics(self) -> list[tuple[float, ...]]: ...
    def channel_busy_until(self, cycle: float) -> list[float]: ...
    def channel_transferred(self, cycle: float) -> list[float]: ...
    def cache_stats(self) -> dict[str, CacheBytes]: ...

def earlier_and_later_into(
    keys: NDArray[Any], weights: NDArray[Any], total: NDArray[Any]
) -> None: ...
