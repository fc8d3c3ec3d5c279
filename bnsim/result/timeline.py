"""What a simulated iteration did over time: kernel and tile spans, DRAM and LLC counters.

The engine records it when asked (`bnsim run --timeline`); bnsim.report.timeline writes it as a
Chrome/Perfetto trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_TILE_SPANS = 50_000  # past this many tiles, a timeline draws one span per core and kernel


@dataclass
class Timeline:
    """Spans and counters of one simulated iteration, in core cycles."""

    scheme: str
    clock_hz: float
    max_tile_spans: int = MAX_TILE_SPANS
    kernels: list[tuple[str, str, float, float]] = field(default_factory=list)  # name, phase, span
    tiles: list[tuple[int, int, float, float]] = field(default_factory=list)  # core, kernel, span
    channel_bytes: list[tuple[float, float, tuple[float, ...]]] = field(default_factory=list)
    channel_busy: list[tuple[float, float, tuple[float, ...]]] = field(default_factory=list)
    llc_held_bytes: list[tuple[float, int]] = field(default_factory=list)  # (cycle, bytes held)

    def tile(self, core: int, start: float, end: float) -> None:
        """A tile ran on `core` from `start` to `end` (in the kernel being recorded)."""
        self.tiles.append((core, len(self.kernels), start, end))

    def kernel(
        self,
        name: str,
        phase: str,
        start: float,
        end: float,
        channel_bytes: tuple[float, ...],
        llc_held_bytes: int,
        channel_busy: tuple[float, ...] = (),
    ) -> None:
        """A kernel ended: its span, the bytes each DRAM channel moved in it, the LLC's content,
        and the cycles each channel was busy in it."""
        self.kernels.append((name, phase, start, end))
        self.channel_bytes.append((start, end, channel_bytes))
        if channel_busy:
            self.channel_busy.append((start, end, channel_busy))
        self.llc_held_bytes.append((end, llc_held_bytes))
