"""Timelines as Chrome trace-event JSON, for ui.perfetto.dev and chrome://tracing.

`trace_events` turns bnsim.result.timeline.Timeline records into one process per scheme: a track of
kernel spans, one track per core with its tile spans, counters per DRAM channel (its bandwidth over
each kernel, and the share of the kernel's span it was busy) and a counter of the LLC's occupancy at
every kernel end. Past a timeline's `max_tile_spans` tiles, each core's tiles in a kernel become one
span (with the tile count), so a trace stays a few MB.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bnsim.result import KernelResult, RunResult
from bnsim.result.timeline import Timeline


def trace_events(
    timelines: Sequence[Timeline], runs: Sequence[RunResult] | None = None
) -> dict[str, Any]:
    """Chrome trace-event JSON of one or more schemes' timelines (one process per scheme); with
    their `runs`, each kernel's span carries its work, traffic and bound, shown on hover."""
    events: list[dict[str, Any]] = []
    for process, timeline in enumerate(timelines, start=1):
        run = runs[process - 1] if runs is not None else None
        events.extend(_scheme_events(process, timeline, run))
    return {"traceEvents": events, "displayTimeUnit": "ns"}


def kernel_args(run: RunResult, kernel: KernelResult) -> dict[str, Any]:
    """What a kernel's span says on hover, each number with its unit in its name."""
    return {
        "flops": kernel.flops,
        "dram_read_bytes": kernel.dram_read_bytes,
        "dram_write_bytes": kernel.dram_write_bytes,
        "dram_transferred_bytes": kernel.dram_transferred_bytes,
        "dram_GB_per_s": round(run.kernel_dram_bandwidth(kernel) / 1e9, 3),
        "bound": kernel.bound(),
        "compute_cycles": kernel.compute_cycles,
        "memory_cycles": kernel.memory_cycles,
        "tiles": kernel.num_tiles,
        "layers": ", ".join(kernel.layers),
    }


def _scheme_events(pid: int, timeline: Timeline, run: RunResult | None) -> list[dict[str, Any]]:
    micro = 1e6 / timeline.clock_hz  # microseconds per cycle: trace-event time unit

    def at(cycle: float) -> float:
        return round(cycle * micro, 4)

    cores = sorted({core for core, *_ in timeline.tiles})
    events: list[dict[str, Any]] = [
        _meta(pid, 0, "process_name", f"{timeline.scheme}"),
        _meta(pid, 0, "thread_name", "kernels"),
        *(_meta(pid, core + 1, "thread_name", f"core {core}") for core in cores),
    ]
    for index, (name, phase, start, end) in enumerate(timeline.kernels):
        event = _span(pid, 0, name, phase, at(start), at(end) - at(start))
        if run is not None:
            event["args"] = kernel_args(run, run.kernels[index])
        events.append(event)
    if len(timeline.tiles) <= timeline.max_tile_spans:
        for core, kernel, start, end in timeline.tiles:
            name, phase = (
                timeline.kernels[kernel][:2] if kernel < len(timeline.kernels) else ("", "")
            )
            events.append(_span(pid, core + 1, name, phase, at(start), at(end) - at(start)))
    else:  # one span per core and kernel
        spans: dict[tuple[int, int], list[float]] = {}
        for core, kernel, start, end in timeline.tiles:
            span = spans.setdefault((core, kernel), [start, end, 0])
            span[0], span[1], span[2] = min(span[0], start), max(span[1], end), span[2] + 1
        for (core, kernel), (start, end, count) in sorted(spans.items()):
            name, phase = timeline.kernels[kernel][:2]
            event = _span(pid, core + 1, name, phase, at(start), at(end) - at(start))
            event["args"]["tiles"] = int(count)
            events.append(event)
    # per kernel and channel, an amount over the kernel's span: bytes per second in GB/s, busy
    # cycles per cycle in percent
    series = (
        ("DRAM bandwidth (GB/s)", timeline.channel_bytes, timeline.clock_hz / 1e9, 3),
        ("DRAM channel busy (%)", timeline.channel_busy, 100.0, 1),
    )
    for name, records, scale, digits in series:
        for start, end, amounts in records:
            values = {
                f"channel {index}": round(amount * scale / (end - start), digits)
                if end > start
                else 0.0
                for index, amount in enumerate(amounts)
            }
            events.append(_counter(pid, name, at(start), values))
        if records:  # each series ends at zero when the last kernel does
            zeros = {f"channel {index}": 0.0 for index in range(len(records[0][2]))}
            events.append(_counter(pid, name, at(records[-1][1]), zeros))
    for cycle, held in timeline.llc_held_bytes:
        events.append(_counter(pid, "LLC occupancy (MiB)", at(cycle), {"held": held / 2**20}))
    return events


def _meta(pid: int, tid: int, kind: str, name: str) -> dict[str, Any]:
    return {"ph": "M", "pid": pid, "tid": tid, "name": kind, "args": {"name": name}}


def _span(
    pid: int, tid: int, name: str, phase: str, start_us: float, duration_us: float
) -> dict[str, Any]:
    return {
        "ph": "X",
        "pid": pid,
        "tid": tid,
        "name": name,
        "cat": phase,
        "ts": start_us,
        "dur": duration_us,
        "args": {},
    }


def _counter(pid: int, name: str, time_us: float, values: dict[str, float]) -> dict[str, Any]:
    return {"ph": "C", "pid": pid, "tid": 0, "name": name, "ts": time_us, "args": values}
