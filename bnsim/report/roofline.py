"""The roofline figure: every kernel under the machine's compute and DRAM roofs, a panel per scheme.

Part of bnsim.report.plots (which re-exports it), apart for its size.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bnsim.report.plotdata import (
    FONT_SIZE,
    KIND_COLORS,
    KINDS,
    Roofs,
    roofline_table,
    scheme_color,
)
from bnsim.result import RunResult


def roofline(runs: Sequence[RunResult], roofs: Roofs, *, title: str | None = None) -> Figure:
    """Every kernel as a point (arithmetic intensity, achieved FLOP/s) under the machine's roofs
    (bnsim.report.machine.machine_roofs), one panel per run on shared axes, coloured by layer kind.

    The roofs: the cores' compute peak; the DRAM bandwidth the channels sustain at their best mix
    of reads and writes (solid); and the pins' peak bandwidth (dashed), which no access pattern
    reaches. Intensity counts the bytes the channels
    moved during the kernel's span (bnsim.report.plotdata.roofline_table); kernels with no FLOPs or
    no DRAM traffic in their span are left out.
    """
    points = roofline_table(runs)
    peak_flops_per_second = roofs.flops_per_second
    sustained_bytes_per_second = roofs.sustained_bytes_per_second
    peak_bytes_per_second = roofs.peak_bytes_per_second
    columns = min(len(runs), 3) or 1
    rows = -(-len(runs) // columns) or 1
    figure = Figure(figsize=(3.4 * columns + 1.6, 3.0 * rows + 0.8), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)
    intensities = [point.intensity for point in points] or [1.0]
    ridge = peak_flops_per_second / sustained_bytes_per_second
    low = min(min(intensities) / 2, 0.05)
    high = max(max(intensities) * 2, 4 * ridge)
    bandwidths = [(sustained_bytes_per_second, "-", "sustained")]
    if peak_bytes_per_second > sustained_bytes_per_second:
        bandwidths.append((peak_bytes_per_second, "--", "peak"))
    used = [kind for kind in KINDS if any(point.layer_kind == kind for point in points)]
    for index, axes in enumerate(grid.flat):
        if index >= len(runs):
            axes.set_visible(False)
            continue
        run = runs[index]
        mine = [point for point in points if point.scheme == run.scheme]
        for kind in used:
            of_kind = [point for point in mine if point.layer_kind == kind]
            axes.scatter(
                [point.intensity for point in of_kind],
                [point.flops_per_second / 1e9 for point in of_kind],
                s=10,
                alpha=0.7,
                color=KIND_COLORS[kind],
                linewidths=0,
            )
        for bandwidth, style, name in bandwidths:
            knee = peak_flops_per_second / bandwidth
            xs = [low, knee, high]
            ys = [min(peak_flops_per_second, x * bandwidth) / 1e9 for x in xs]
            axes.plot(xs, ys, color="#222222", linewidth=1.2, linestyle=style)
            if index == 0:
                axes.annotate(
                    f"{name} {bandwidth / 1e9:.0f} GB/s",
                    (low * 1.3, low * 1.3 * bandwidth / 1e9),
                    xytext=(0, 3 if name == "peak" else -3),
                    textcoords="offset points",
                    va="bottom" if name == "peak" else "top",
                    fontsize=FONT_SIZE - 2,
                )
        if index == 0:
            axes.annotate(
                f"peak {peak_flops_per_second / 1e12:.2f} TFLOP/s",
                (high, peak_flops_per_second / 1e9),
                xytext=(-2, 3),
                textcoords="offset points",
                ha="right",
                fontsize=FONT_SIZE - 2,
            )
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlim(low, high)
        axes.set_title(
            f"{run.scheme} ({len(mine)} kernels)",
            fontsize=FONT_SIZE,
            color=scheme_color(run.scheme),
        )
        axes.grid(True, which="both", alpha=0.2)
        axes.tick_params(labelsize=FONT_SIZE - 1)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
    figure.supxlabel(
        "arithmetic intensity (FLOP per byte the DRAM channels moved)", fontsize=FONT_SIZE
    )
    figure.supylabel("achieved GFLOP/s", fontsize=FONT_SIZE)
    figure.suptitle(title or "Kernels on the roofline", fontsize=FONT_SIZE + 2)
    figure.legend(
        handles=[Patch(facecolor=KIND_COLORS[kind], label=kind) for kind in used],
        title="layer kind",
        loc="outside right upper",
        fontsize=FONT_SIZE - 1,
    )
    return figure
