"""Figures of simulated runs: traffic and time breakdowns, sweeps, per-layer traffic, roofline.

Every function takes results (bnsim.result.RunResult) and returns a matplotlib Figure built with the
object API on an Agg canvas: nothing is shown, no global pyplot state is touched, so notebooks,
scripts and worker processes can all call them. Each figure's numbers come from a `*_table`
function of bnsim.report.plotdata that returns plain rows, so tests (and users) can check what is
drawn. `save` writes PNG, SVG or PDF by the file's extension. Scheme colours are the same in every
figure; palettes are colour-blind safe (Okabe and Ito for schemes, Tol's "muted" for layer kinds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

from bnsim.errors import ConfigError
from bnsim.files import write_whole
from bnsim.report.plotdata import (
    FONT_SIZE,
    FORMATS,
    KIND_COLORS,
    KINDS,
    PHASE_HATCHES,
    PHASES,
    SWEEP_METRICS,
    Segment,
    baseline_index,
    breakdown_table,
    hatch_color,
    layer_table,
    scheme_color,
    sweep_table,
)
from bnsim.report.roofline import roofline
from bnsim.result import RunResult

# the figures (the roofline lives in its own module; it is one of these all the same)
__all__ = [
    "layer_traffic",
    "parameter_sweep",
    "roofline",
    "save",
    "time_breakdown",
    "traffic_breakdown",
]

# --- breakdowns ----------------------------------------------------------------------------------


def traffic_breakdown(runs: Sequence[RunResult], *, title: str | None = None) -> Figure:
    """Stacked bars of DRAM traffic per scheme: colour = layer kind, hatch = phase; totals and
    the reduction against the baseline run annotated."""
    totals = [run.dram_bytes() / 1e9 for run in runs]
    return _breakdown_figure(
        runs,
        breakdown_table(runs, "traffic"),
        totals,
        ylabel="DRAM traffic per iteration (GB)",
        unit="GB",
        title=title or "DRAM traffic by layer kind and phase",
    )


def time_breakdown(runs: Sequence[RunResult], *, title: str | None = None) -> Figure:
    """Stacked bars of iteration time per scheme (kernel time by layer kind and phase); totals and
    the speedup against the baseline run annotated."""
    totals = [run.seconds * 1e3 for run in runs]
    return _breakdown_figure(
        runs,
        breakdown_table(runs, "time"),
        totals,
        ylabel="time per iteration (ms)",
        unit="ms",
        title=title or "Iteration time by layer kind and phase",
    )


def _breakdown_figure(
    runs: Sequence[RunResult],
    segments: list[Segment],
    totals: list[float],
    *,
    ylabel: str,
    unit: str,
    title: str,
) -> Figure:
    figure, axes = _figure(width=max(5.0, 1.3 * len(runs) + 3.2), height=4.6)
    positions = {run.scheme: index for index, run in enumerate(runs)}
    bottoms = [0.0] * len(runs)
    for segment in segments:
        index = positions[segment.scheme]
        axes.bar(
            index,
            segment.value,
            bottom=bottoms[index],
            width=0.62,
            color=KIND_COLORS[segment.layer_kind],
            hatch=PHASE_HATCHES.get(segment.phase, "++"),
            edgecolor=hatch_color(KIND_COLORS[segment.layer_kind]),
            linewidth=0.3,
            label=f"{segment.layer_kind} {segment.phase}",
        )
        bottoms[index] += segment.value
    baseline = baseline_index(runs)
    for index, total in enumerate(totals):
        text = f"{total:.3g} {unit}"
        if baseline is not None and index != baseline and totals[baseline] > 0:
            change = total / totals[baseline] - 1
            text += f"\n{change:+.1%}"
        axes.annotate(
            text,
            (index, total),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=FONT_SIZE - 1,
        )
    axes.set_xticks(range(len(runs)), [run.scheme for run in runs], rotation=15, ha="right")
    for label, run in zip(axes.get_xticklabels(), runs, strict=True):
        label.set_color(scheme_color(run.scheme))
    axes.set_ylabel(ylabel)
    axes.set_ylim(0, max(totals, default=1) * 1.2 or 1)
    axes.set_title(title)
    used_kinds = [kind for kind in KINDS if any(s.layer_kind == kind for s in segments)]
    used_phases = [phase for phase in PHASES if any(s.phase == phase for s in segments)]
    kind_legend = axes.legend(
        handles=[Patch(facecolor=KIND_COLORS[kind], label=kind) for kind in used_kinds],
        title="layer kind",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=FONT_SIZE - 1,
    )
    axes.add_artist(kind_legend)
    axes.legend(
        handles=[
            Patch(facecolor="#DDDDDD", hatch=PHASE_HATCHES[phase], label=phase, edgecolor="#555555")
            for phase in used_phases
        ],
        title="phase",
        loc="lower left",
        bbox_to_anchor=(1.01, 0.0),
        fontsize=FONT_SIZE - 1,
    )
    return figure


# --- parameter sweeps ----------------------------------------------------------------------------


def parameter_sweep(
    points: Sequence[tuple[float, Sequence[RunResult]]]
    | Mapping[str, Sequence[tuple[float, Sequence[RunResult]]]],
    parameter: str,
    *,
    metric: str = "speedup",
    unit: str = "",
    title: str | None = None,
    context: str = "",
) -> Figure:
    """One line per scheme: the metric against a swept parameter (LLC size, cores, batch, ...).

    `points` pairs each parameter value (in `unit`, e.g. MiB) with the runs simulated there; or
    maps group labels (the other swept values, e.g. "resnet50, batch=64") to such points, drawn
    as one line style per group. The x axis is log₂ whenever every value is positive (sweeps
    double sizes), ticked at the swept values. `context` (what every point shares, e.g.
    "densenet121, batch 32, on cmp16") leads the default title.
    """
    groups = points if isinstance(points, Mapping) else {"": points}
    figure, axes = _figure(width=6.4 if len(groups) == 1 else 7.6, height=4.2)
    xs_all: list[float] = []
    schemes: dict[str, str] = {}  # scheme → colour, in order of appearance
    for number, (group, group_points) in enumerate(groups.items()):
        for scheme, values in sweep_table(group_points, metric).items():
            xs, ys = zip(*values, strict=True)
            xs_all.extend(xs)
            axes.plot(
                xs,
                ys,
                marker="o",
                color=scheme_color(scheme),
                linestyle=LINE_STYLES[number % len(LINE_STYLES)],
                label=f"{scheme} ({group})" if group else scheme,
                linewidth=1.8,
            )
            schemes.setdefault(scheme, scheme_color(scheme))
    if not xs_all:
        raise ValueError(f"no runs to plot {metric} against {parameter} (a baseline run is needed)")
    if min(xs_all) > 0:
        axes.set_xscale("log", base=2)
        axes.set_xticks(sorted(set(xs_all)))
        axes.xaxis.set_major_formatter(lambda value, _: f"{value:g}")
        axes.xaxis.set_minor_formatter(lambda value, _: "")
        axes.xaxis.set_minor_locator(NullLocator())
    if metric == "traffic_reduction":
        axes.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    if metric == "speedup":
        axes.axhline(1.0, color="#999999", linewidth=0.8, linestyle="--")
    axes.set_xlabel(f"{parameter} ({unit})" if unit else parameter)
    axes.set_ylabel(SWEEP_METRICS[metric])
    default = f"{SWEEP_METRICS[metric].split(' (')[0]}, by {parameter}"
    axes.set_title(title or (f"{context}: {default}" if context else default.capitalize()))
    axes.grid(True, alpha=0.3)
    if len(groups) == 1:
        axes.legend(title="scheme", fontsize=FONT_SIZE - 1)
    else:  # colour names the scheme, line style the group
        scheme_legend = axes.legend(
            handles=[Line2D([], [], color=c, marker="o", label=s) for s, c in schemes.items()],
            title="scheme",
            fontsize=FONT_SIZE - 1,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
        )
        axes.add_artist(scheme_legend)
        styles = [
            Line2D([], [], color="#555555", linestyle=LINE_STYLES[n % len(LINE_STYLES)], label=g)
            for n, g in enumerate(groups)
        ]
        axes.legend(
            handles=styles, fontsize=FONT_SIZE - 1, loc="lower left", bbox_to_anchor=(1.01, 0.0)
        )
    return figure


LINE_STYLES: tuple[Literal["-", "--", ":", "-."], ...] = ("-", "--", ":", "-.")


# --- per layer -----------------------------------------------------------------------------------


def layer_traffic(
    first: RunResult, second: RunResult, *, title: str | None = None, labels: int = 12
) -> Figure:
    """DRAM traffic per layer, network order: one panel per scheme on the same scale (so that no
    bar hides another, whatever the number of layers), and below them the running total the
    second scheme saved: where its savings come from. `labels` layer names label the x axis."""
    layers, amounts = layer_table([first, second])
    figure = Figure(figsize=(10.0, 6.4), layout="constrained")
    FigureCanvasAgg(figure)
    top, middle, bottom = figure.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [2, 2, 1.4]}
    )
    middle.sharey(top)
    positions = range(len(layers))
    for axes, run in ((top, first), (middle, second)):
        axes.bar(
            positions, amounts[run.scheme], width=0.8, color=scheme_color(run.scheme), linewidth=0
        )
        axes.set_ylabel("DRAM (MB)", fontsize=FONT_SIZE)
        axes.set_title(
            f"{run.scheme}: {run.dram_bytes() / 1e9:.3g} GB in all",
            loc="left",
            color=scheme_color(run.scheme),
            fontsize=FONT_SIZE,
        )
    running, total = [], 0.0
    for a, b in zip(amounts[first.scheme], amounts[second.scheme], strict=True):
        total += (a - b) / 1e3
        running.append(total)
    bottom.plot(positions, running, color="#D55E00", linewidth=1.5)
    bottom.axhline(0.0, color="#999999", linewidth=0.6)
    bottom.set_ylabel(f"saved by {second.scheme},\nrunning total (GB)", fontsize=FONT_SIZE)
    bottom.set_xlabel("layer, in network order", fontsize=FONT_SIZE)
    step = max(1, math.ceil(len(layers) / max(1, labels)))
    ticks = list(range(0, len(layers), step))
    bottom.set_xticks(ticks, [layers[t] for t in ticks], rotation=35, ha="right", fontsize=7)
    bottom.set_xlim(-1, len(layers))
    for axes in (top, middle, bottom):
        axes.tick_params(axis="y", labelsize=FONT_SIZE - 1)
        axes.grid(True, axis="y", alpha=0.25)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
    figure.suptitle(
        title or f"DRAM traffic per layer: {first.scheme} vs {second.scheme}",
        fontsize=FONT_SIZE + 2,
    )
    return figure


# --- output --------------------------------------------------------------------------------------


def save(figure: Figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Write a figure as PNG, SVG or PDF (by extension), via a temporary file and a rename.

    Raises:
        ConfigError: an extension other than .png, .svg or .pdf.
    """
    path = Path(path)
    extension = path.suffix.lower().lstrip(".")
    if extension not in FORMATS:
        raise ConfigError(
            f"{path}: cannot tell the image format from the extension "
            f"{path.suffix or '(none)'!r}; use .png, .svg or .pdf"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(
        path,
        lambda partial: figure.savefig(partial, format=extension, dpi=dpi, bbox_inches="tight"),
    )
    return path


def _figure(*, width: float, height: float) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.tick_params(labelsize=FONT_SIZE - 1)
    axes.title.set_fontsize(FONT_SIZE + 2)
    axes.xaxis.label.set_fontsize(FONT_SIZE)
    axes.yaxis.label.set_fontsize(FONT_SIZE)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes
