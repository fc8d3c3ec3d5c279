"""Timelines: recording changes no result; the trace events are consistent and bounded."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path

import pytest

from bnsim.config.machine import load_machine
from bnsim.graph.zoo import build_model
from bnsim.report.timeline import trace_events
from bnsim.result.timeline import Timeline
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.trace import SimOptions

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("fidelity", ["fast", "line"])
def test_recording_a_timeline_changes_no_number(fidelity: str) -> None:
    machine = load_machine(REPO / "hwconfigs" / "cmp16.yaml")
    schedule = build_schedule(build_model("tiny_cnn", batch=4, image=32), "bnff")
    options = SimOptions(fidelity=fidelity, tiles_per_core=2)  # type: ignore[arg-type]
    timeline = Timeline(scheme="bnff", clock_hz=machine.cores.clock_hz)
    assert simulate(schedule, machine, options, timeline=timeline) == simulate(
        schedule, machine, options
    )
    assert len(timeline.kernels) == len(schedule.kernels)


def test_trace_events_are_consistent_with_the_run() -> None:
    machine = load_machine(REPO / "hwconfigs" / "tiny.yaml")
    schedule = build_schedule(build_model("tiny_cnn", batch=4, image=32), "baseline")
    timeline = Timeline(scheme="baseline", clock_hz=machine.cores.clock_hz)
    run = simulate(schedule, machine, timeline=timeline)
    events = json.loads(json.dumps(trace_events([timeline], [run])))["traceEvents"]
    spans = [event for event in events if event["ph"] == "X"]
    kernel_spans = [event for event in spans if event["tid"] == 0]
    tile_spans = [event for event in spans if event["tid"] > 0]
    assert len(kernel_spans) == len(run.kernels)
    assert len(tile_spans) == sum(kernel.num_tiles for kernel in run.kernels)
    micro = 1e6 / machine.cores.clock_hz
    for span, kernel in zip(kernel_spans, run.kernels, strict=True):
        assert span["name"] == kernel.name
        assert span["ts"] == pytest.approx(kernel.start_cycle * micro, abs=micro)
        assert span["ts"] + span["dur"] == pytest.approx(kernel.end_cycle * micro, abs=micro)
        args = span["args"]  # what Perfetto shows on hover
        assert (args["flops"], args["dram_read_bytes"], args["dram_write_bytes"]) == (
            kernel.flops,
            kernel.dram_read_bytes,
            kernel.dram_write_bytes,
        )
        assert args["bound"] == kernel.bound() in ("compute", "memory")
        seconds = kernel.cycles() / machine.cores.clock_hz
        moved = args["dram_transferred_bytes"]
        assert moved == kernel.dram_transferred_bytes
        assert args["dram_GB_per_s"] == pytest.approx(moved / seconds / 1e9, abs=1e-3)
    by_core = defaultdict(list)
    for span in tile_spans:
        by_core[span["tid"]].append((span["ts"], span["ts"] + span["dur"]))
    for core_spans in by_core.values():  # a core runs one tile at a time
        core_spans.sort()
        for (_, end), (start, _) in itertools.pairwise(core_spans):
            assert start >= end - 1e-6
    busy = {tid - 1: sum(end - start for start, end in s) for tid, s in by_core.items()}
    for core, cycles in enumerate(run.core_busy_cycles):
        # span ends are written to 1e-4 µs: each span's duration may be off by that much
        rounding = 1e-4 * len(by_core.get(core + 1, ()))
        assert busy.get(core, 0.0) == pytest.approx(cycles * micro, abs=2 * micro + rounding)
    occupancy = [event["args"]["held"] for event in events if event["name"].startswith("LLC")]
    assert len(occupancy) == len(run.kernels)
    assert 0 < max(occupancy) <= machine.llc.size_bytes / 2**20
    bandwidth = [event for event in events if event["name"].startswith("DRAM bandwidth")]
    assert len(bandwidth) == len(run.kernels) + 1  # and a closing zero
    assert set(bandwidth[0]["args"]) == {f"channel {i}" for i in range(machine.dram.channels)}
    # a channel is busy at most the whole of a kernel's span, and busy when it moved bytes
    busy = [event for event in events if event["name"].startswith("DRAM channel busy")]
    assert len(busy) == len(run.kernels) + 1
    for share, rate in zip(busy, bandwidth, strict=True):
        for channel, percent in share["args"].items():
            assert 0 <= percent <= 100
            assert (percent > 0) == (rate["args"][channel] > 0) or rate["args"][channel] < 0.01


def test_many_tiles_become_one_span_per_core_and_kernel() -> None:
    machine = load_machine(REPO / "hwconfigs" / "cmp16.yaml")
    schedule = build_schedule(build_model("tiny_cnn", batch=32, image=64), "baseline")
    timeline = Timeline(scheme="baseline", clock_hz=machine.cores.clock_hz, max_tile_spans=10)
    run = simulate(schedule, machine, SimOptions(tiles_per_core=3), timeline=timeline)
    spans = [e for e in trace_events([timeline])["traceEvents"] if e["ph"] == "X" and e["tid"]]
    assert sum(span["args"]["tiles"] for span in spans) == sum(k.num_tiles for k in run.kernels)
    assert len(spans) < sum(k.num_tiles for k in run.kernels)
