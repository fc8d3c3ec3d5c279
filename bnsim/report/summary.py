"""The tables of a point's runs as text cells: totals per scheme, each run's traffic and time by
phase and layer kind. The terminal summary (`describe_runs`), the CSV and the HTML report share
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from bnsim import units
from bnsim.experiment.point import Point
from bnsim.graph.layer import CATEGORIES
from bnsim.report.plotdata import PHASES, baseline_index
from bnsim.report.tables import text_table
from bnsim.result import RunResult

# the one rule every breakdown follows (docs/results.md), said where a breakdown is shown
ATTRIBUTION = (
    "both charged to ops: bytes to the op that caused them; a kernel's time to its ops by what "
    "bounds it, DRAM bytes if memory-bound, compute cycles if not"
)


def byte_unit(largest: float) -> tuple[str, float]:
    """The unit a column of byte counts up to `largest` reads best in: GB, or MB below 1 GB."""
    return ("GB", 1e9) if largest >= 1e9 else ("MB", 1e6)


class Table(NamedTuple):
    """Column names (with units) and rows of formatted cells."""

    header: list[str]
    rows: list[list[str]]


def scheme_table(runs: Sequence[RunResult]) -> Table:
    """One row per run: time, DRAM traffic and bandwidth, FLOP rate, and against the baseline."""
    index = baseline_index(runs)
    baseline = runs[index] if index is not None else None
    unit, scale = byte_unit(max((run.dram_bytes() for run in runs), default=0))
    rows = []
    for run in runs:
        speedup = f"{baseline.cycles / run.cycles:.3f}×" if baseline and run.cycles else "—"
        traffic = (
            f"{run.dram_bytes() / baseline.dram_bytes() - 1:+.1%}"
            if baseline and baseline.dram_bytes()
            else "—"
        )
        seconds = run.seconds or float("inf")
        rows.append(
            [
                run.scheme,
                f"{run.seconds * 1e3:.1f}",
                f"{run.cycles:,}",
                f"{run.dram_read_bytes / scale:.2f}",
                f"{run.dram_write_bytes / scale:.2f}",
                f"{run.dram_bytes() / seconds / 1e9:.1f}",
                f"{run.flops / seconds / 1e12:.3f}",
                speedup,
                traffic,
            ]
        )
    header = [
        "scheme",
        "time (ms)",
        "time (cycles)",
        f"DRAM read ({unit})",
        f"DRAM write ({unit})",
        "DRAM BW (GB/s)",
        "TFLOP/s",
        "speedup",
        "DRAM traffic vs baseline",
    ]
    return Table(header, rows)


def phase_kind_table(run: RunResult) -> Table:
    """A run's DRAM traffic (read + write; GB, or MB for a run under 1 GB) and time (ms) by layer
    kind, per phase and in all, charged by the rule in ATTRIBUTION."""
    cells = {(row["phase"], row["layer_kind"]): row for row in run.breakdown("phase", "layer_kind")}
    unit, scale = byte_unit(run.dram_bytes())
    header = [
        "layer kind",
        *[f"{phase} {unit}" for phase in PHASES],
        f"total {unit}",
        *[f"{phase} ms" for phase in PHASES],
        "total ms",
    ]
    milliseconds_per_cycle = run.seconds * 1e3 / run.cycles if run.cycles else 0.0
    rows = []
    for kind in CATEGORIES:
        found = [cells.get((phase, kind)) for phase in PHASES]
        if not any(found):
            continue
        traffic = [
            (f["dram_read_bytes"] + f["dram_write_bytes"]) / scale if f else 0.0 for f in found
        ]
        times = [f["cycles"] * milliseconds_per_cycle if f else 0.0 for f in found]
        rows.append(
            [
                kind,
                *[f"{t:.2f}" for t in traffic],
                f"{sum(traffic):.2f}",
                *[f"{t:.1f}" for t in times],
                f"{sum(times):.1f}",
            ]
        )
    return Table(header, rows)


def describe_runs(point: Point, runs: Sequence[RunResult]) -> str:
    """The human summary of `bnsim run`: totals per scheme, then where traffic and time go."""
    lines = [point_heading(point), "", text_table(*scheme_table(runs))]
    for run in runs:
        lines += [
            "",
            f"{run.scheme}: DRAM traffic (read + write) and time by phase and layer kind",
            f"  ({ATTRIBUTION})",
            text_table(*phase_kind_table(run), indent="  "),
        ]
    return "\n".join(lines)


def point_heading(point: Point) -> str:
    """One line on what was simulated: network, batch, input, machine, fidelity."""
    machine, network = point.machine, point.network
    c = network.input_channels()
    h, w = network.image
    return (
        f"{network.name}, batch {network.batch} samples of {c}×{h}×{w}, one training iteration, on "
        f"{machine.name} ({machine.cores.count} cores, "
        f"{units.format_flop_rate(machine.peak_flops_per_second())}, "
        f"{units.format_bandwidth(machine.dram.peak_bandwidth_bytes_per_second())} DRAM), "
        f"{point.options.fidelity} fidelity"
    )


def breakdown_csv(runs: Sequence[RunResult]) -> str:
    """One tidy row per (scheme, fidelity, phase, layer kind): cycles, seconds, DRAM bytes."""
    lines = ["scheme,fidelity,phase,layer_kind,cycles,seconds,dram_read_bytes,dram_write_bytes"]
    for run in runs:
        seconds_per_cycle = run.seconds / run.cycles if run.cycles else 0.0
        for row in run.breakdown("phase", "layer_kind"):
            lines.append(
                f"{run.scheme},{run.fidelity},{row['phase']},{row['layer_kind']},{row['cycles']},"
                f"{row['cycles'] * seconds_per_cycle!r},{row['dram_read_bytes']},"
                f"{row['dram_write_bytes']}"
            )
    return "\n".join(lines) + "\n"
