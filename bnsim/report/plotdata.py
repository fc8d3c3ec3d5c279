"""What the figures of bnsim.report.plots draw, as plain rows; colours and names they share.

Kept apart from the drawing so that tests and users can check the numbers of a figure, and so that
the command line can name plot options without importing matplotlib.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bnsim.result import RunResult

FORMATS = ("png", "svg", "pdf")
FONT_SIZE = 10  # points, of axis labels (titles +2, ticks and legends -1)
# stacking order
KINDS = ("conv", "bn", "relu", "activation", "concat", "pool", "add", "mul", "fc", "other")
# bnsim.schedule.Phase's values in order, spelled here so that the command line can name them
# without loading the schedule's modules (tests/unit/test_plots.py checks that they agree)
PHASES = ("fwd", "bwd_data", "bwd_weight", "update")
# a different pattern per phase (not mirror images), drawn in a colour that stands out from the fill
PHASE_HATCHES = {"fwd": "", "bwd_data": "///", "bwd_weight": "xxx", "update": "..."}
KIND_COLORS = {  # Paul Tol's "muted" palette
    "conv": "#332288",
    "bn": "#88CCEE",
    "relu": "#44AA99",
    "activation": "#AA4499",
    "concat": "#117733",
    "pool": "#999933",
    "add": "#DDCC77",
    "mul": "#DDDDDD",
    "fc": "#CC6677",
    "other": "#882255",
}
SCHEME_COLORS = {  # Okabe and Ito
    "baseline": "#555555",
    "fission": "#E69F00",
    "bnff": "#0072B2",
    "recompute": "#009E73",
    "bnff+sampling": "#CC79A7",
}
_MORE_COLORS = ("#D55E00", "#56B4E9", "#F0E442", "#000000", "#B8860B", "#8B4513")


def scheme_color(scheme: str) -> str:
    """The colour of a scheme, the same in every figure (options after ':' do not change it)."""
    name = scheme.split(":", maxsplit=1)[0]
    known = SCHEME_COLORS.get(name)
    if known is not None:
        return known
    return _MORE_COLORS[zlib.crc32(name.encode()) % len(_MORE_COLORS)]


def hatch_color(fill: str) -> str:
    """Near black on a light fill, white on a dark one (relative luminance, sRGB weights)."""
    red, green, blue = (int(fill[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "#222222" if 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.5 else "#FFFFFF"


def kind_of(layer_kind: str) -> str:
    """A result's layer kind as a stacking category (loss and anything unknown: other)."""
    return layer_kind if layer_kind in KIND_COLORS else "other"


# --- tables --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """One stacked segment: a scheme's amount for one layer kind in one phase."""

    scheme: str
    phase: str
    layer_kind: str
    value: float


def breakdown_table(runs: Sequence[RunResult], metric: str) -> list[Segment]:
    """Per run, the amount of each (phase, layer kind), in stacking order (phase-major).

    metric: "traffic" (DRAM read + write, GB) or "time" (milliseconds of kernel time).
    """
    if metric not in ("traffic", "time"):
        raise ValueError(f"unknown breakdown metric {metric!r}; expected traffic or time")
    segments: list[Segment] = []
    for run in runs:
        amounts: dict[tuple[str, str], float] = defaultdict(float)
        milliseconds_per_cycle = 1e3 * run.seconds / run.cycles if run.cycles else 0.0
        for row in run.breakdown("phase", "layer_kind"):
            key = (row["phase"], kind_of(row["layer_kind"]))
            if metric == "traffic":
                amounts[key] += (row["dram_read_bytes"] + row["dram_write_bytes"]) / 1e9
            else:
                amounts[key] += row["cycles"] * milliseconds_per_cycle
        phases = [*PHASES, *sorted({phase for phase, _ in amounts} - set(PHASES))]
        segments.extend(
            Segment(run.scheme, phase, kind, amounts[phase, kind])
            for phase in phases
            for kind in KINDS
            if amounts.get((phase, kind))
        )
    return segments


def sweep_table(
    points: Sequence[tuple[float, Sequence[RunResult]]], metric: str = "speedup"
) -> dict[str, list[tuple[float, float]]]:
    """Per scheme, (parameter value, metric) in parameter order.

    metric: "speedup" (the point's baseline cycles / the scheme's cycles), "traffic" (DRAM GB),
    "time" (ms) or "traffic_reduction" (1 − the scheme's DRAM bytes / the baseline's).
    """
    if metric not in SWEEP_METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(SWEEP_METRICS)}")
    series: dict[str, list[tuple[float, float]]] = {}
    for value, runs in sorted(points, key=lambda point: point[0]):
        index = baseline_index(runs)
        baseline = runs[index] if index is not None else None
        for run in runs:
            if metric == "traffic":
                y = run.dram_bytes() / 1e9
            elif metric == "time":
                y = run.seconds * 1e3
            elif baseline is None:
                continue
            elif metric == "speedup":
                y = baseline.cycles / run.cycles
            else:
                y = 1 - run.dram_bytes() / baseline.dram_bytes()
            series.setdefault(run.scheme, []).append((value, y))
    return series


SWEEP_METRICS = {
    "speedup": "speedup vs baseline (×)",
    "traffic": "DRAM traffic per iteration (GB)",
    "time": "time per iteration (ms)",
    "traffic_reduction": "DRAM traffic saved vs baseline",
}


def layer_table(runs: Sequence[RunResult]) -> tuple[list[str], dict[str, list[float]]]:
    """Layers in network order (of their first kernel), and per run its DRAM MB per layer."""
    order: dict[str, int] = {}
    for run in runs:
        for kernel in run.kernels:
            for layer in kernel.layers:
                order.setdefault(layer, len(order))
        for row in run.traffic:
            order.setdefault(row.layer, len(order))
    layers = sorted(order, key=order.__getitem__)
    amounts = {}
    for run in runs:
        per_layer: dict[str, float] = defaultdict(float)
        for row in run.traffic:
            per_layer[row.layer] += (row.dram_read_bytes + row.dram_write_bytes) / 1e6
        amounts[run.scheme] = [per_layer.get(layer, 0.0) for layer in layers]
    return layers, amounts


@dataclass(frozen=True, slots=True)
class Roofs:
    """A machine's roofline: what no kernel can exceed, and the pins' peak that nothing reaches."""

    flops_per_second: float  # all cores' peak
    sustained_bytes_per_second: float  # DRAM, at the channels' best mix of reads and writes
    peak_bytes_per_second: float  # DRAM, at the pins


@dataclass(frozen=True, slots=True)
class KernelPoint:
    """One kernel on the roofline: FLOPs per byte the DRAM channels moved during its span."""

    scheme: str
    kernel: str
    layer_kind: str  # its stacking category (kind_of)
    intensity: float  # FLOPs per DRAM byte
    flops_per_second: float
    dram_bytes_per_second: float


def roofline_table(runs: Sequence[RunResult]) -> list[KernelPoint]:
    """Every kernel with FLOPs and DRAM traffic in its span: its arithmetic intensity and achieved
    FLOP/s, by the bytes the channels moved while it ran (KernelResult.dram_transferred_bytes), so
    that no kernel can sit above the bandwidth the channels sustain."""
    points = []
    for run in runs:
        seconds_per_cycle = run.seconds / run.cycles if run.cycles else 0.0
        for kernel in run.kernels:
            moved = kernel.dram_transferred_bytes
            seconds = kernel.cycles() * seconds_per_cycle
            if kernel.flops and moved and seconds > 0:
                points.append(
                    KernelPoint(
                        run.scheme,
                        kernel.name,
                        kind_of(kernel.layer_kind),
                        kernel.flops / moved,
                        kernel.flops / seconds,
                        moved / seconds,
                    )
                )
    return points


def baseline_index(runs: Sequence[RunResult]) -> int | None:
    """Position of the baseline run (options allowed), if there is one."""
    return next(
        (index for index, run in enumerate(runs) if run.scheme.split(":")[0] == "baseline"), None
    )
