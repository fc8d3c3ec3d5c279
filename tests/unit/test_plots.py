"""Figures: every kind drawn from real runs, and the numbers drawn equal the results' numbers."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex, to_rgb
from PIL import Image

from bnsim.config.machine import load_machine
from bnsim.errors import ConfigError
from bnsim.graph.zoo import build_model
from bnsim.report import plots
from bnsim.report.machine import machine_roofs
from bnsim.report.plotdata import (
    KIND_COLORS,
    PHASE_HATCHES,
    breakdown_table,
    hatch_color,
    scheme_color,
    sweep_table,
)
from bnsim.result import RunResult
from bnsim.schedule import Phase
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.sim.dramrate import best_sustained_bandwidth

REPO = Path(__file__).resolve().parents[2]
SCHEMES = ("baseline", "bnff", "recompute")


def simulate_all(llc: str | None = None) -> list[RunResult]:
    machine = load_machine(REPO / "hwconfigs" / "tiny.yaml")
    if llc:
        machine = machine.with_overrides([f"llc.size={llc}"])
    network = build_model("tiny_cnn", batch=4, image=32)
    return [simulate(build_schedule(network, scheme), machine) for scheme in SCHEMES]


@pytest.fixture(scope="module")
def runs() -> list[RunResult]:
    return simulate_all()


def bar_heights_by_x(figure: plots.Figure) -> dict[int, float]:
    """Sum of bar heights at each x position of the figure's first axes."""
    heights: dict[int, float] = defaultdict(float)
    for patch in figure.axes[0].patches:
        heights[round(patch.get_x() + patch.get_width() / 2)] += patch.get_height()
    return heights


def assert_image(path: Path, min_width: int = 400) -> None:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
    assert width >= min_width
    assert 150 <= height <= 3000


def test_traffic_breakdown_stacks_exactly_each_runs_dram_bytes(
    runs: list[RunResult], tmp_path: Path
) -> None:
    figure = plots.traffic_breakdown(runs)
    heights = bar_heights_by_x(figure)
    for index, run in enumerate(runs):
        assert heights[index] == pytest.approx(run.dram_bytes() / 1e9, rel=1e-12)
    texts = [text.get_text() for text in figure.axes[0].texts]
    reduction = runs[1].dram_bytes() / runs[0].dram_bytes() - 1
    assert f"{reduction:+.1%}" in texts[1]
    assert plots.save(figure, tmp_path / "traffic.png").exists()
    assert_image(tmp_path / "traffic.png")


def test_time_breakdown_stacks_each_runs_kernel_time(runs: list[RunResult], tmp_path: Path) -> None:
    figure = plots.time_breakdown(runs)
    heights = bar_heights_by_x(figure)
    for index, run in enumerate(runs):
        kernel_ms = sum(kernel.cycles() for kernel in run.kernels) * run.seconds / run.cycles * 1e3
        assert heights[index] == pytest.approx(kernel_ms, rel=1e-12)
        assert heights[index] == pytest.approx(run.seconds * 1e3, rel=1e-12)  # back to back
    plots.save(figure, tmp_path / "time.png")
    assert_image(tmp_path / "time.png")
    plots.save(figure, tmp_path / "time.svg")
    assert (tmp_path / "time.svg").read_text().lstrip().startswith("<?xml")


def test_phase_hatches_differ_and_stand_out_from_every_fill(runs: list[RunResult]) -> None:
    assert tuple(phase.value for phase in Phase) == plots.PHASES  # the schedule's, in order
    assert set(PHASE_HATCHES) == set(plots.PHASES)
    assert len(set(PHASE_HATCHES.values())) == len(PHASE_HATCHES)
    for fill in KIND_COLORS.values():
        fill_rgb = to_rgb(fill)
        hatch_rgb = to_rgb(hatch_color(fill))
        # luminance apart by more than half the range: white on dark fills, black on light ones
        luminance = [0.2126 * r + 0.7152 * g + 0.0722 * b for r, g, b in (fill_rgb, hatch_rgb)]
        assert abs(luminance[0] - luminance[1]) > 0.35, fill
    figure = plots.traffic_breakdown(runs)
    for patch in figure.axes[0].patches:
        assert to_hex(patch.get_edgecolor()) == hatch_color(to_hex(patch.get_facecolor())).lower()


def test_breakdown_segments_are_phase_and_kind_sums(runs: list[RunResult]) -> None:
    segments = breakdown_table(runs[:1], "traffic")
    run = runs[0]
    conv_fwd = sum(
        row.dram_read_bytes + row.dram_write_bytes
        for row in run.traffic
        if row.phase == "fwd" and row.layer_kind == "conv"
    )
    (found,) = [s for s in segments if (s.phase, s.layer_kind) == ("fwd", "conv")]
    assert found.value == pytest.approx(conv_fwd / 1e9, rel=1e-12)
    assert {segment.layer_kind for segment in segments} <= set(plots.KINDS)


def test_parameter_sweep_draws_each_points_speedup(tmp_path: Path) -> None:
    sizes = {"64KiB": 0.0625, "256KiB": 0.25, "1MiB": 1.0}
    points = [(value, simulate_all(llc)) for llc, value in sizes.items()]
    figure = plots.parameter_sweep(points, "llc.size", unit="MiB")
    lines = {line.get_label(): line for line in figure.axes[0].lines}
    for position, (value, point_runs) in enumerate(points):
        baseline = point_runs[0]
        for run in point_runs:
            line = lines[run.scheme]
            assert line.get_xdata()[position] == value
            assert line.get_ydata()[position] == baseline.cycles / run.cycles
    assert lines["bnff"].get_color().lower() == scheme_color("bnff").lower()
    axes = figure.axes[0]
    assert axes.get_xscale() == "log"  # base 2, ticked at the swept sizes
    assert list(axes.get_xticks()) == [0.0625, 0.25, 1.0]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["0.0625", "0.25", "1"]
    titled = plots.parameter_sweep(points, "llc.size", unit="MiB", context="tiny_cnn, on tiny")
    assert titled.axes[0].get_title() == "tiny_cnn, on tiny: speedup vs baseline, by llc.size"
    traffic = sweep_table(points, "traffic")
    assert traffic["bnff"][0] == (0.0625, points[0][1][1].dram_bytes() / 1e9)
    plots.save(figure, tmp_path / "sweep.png")
    assert_image(tmp_path / "sweep.png")
    plots.save(figure, tmp_path / "sweep.pdf")
    assert (tmp_path / "sweep.pdf").read_bytes().startswith(b"%PDF")


def test_layer_traffic_draws_per_layer_bytes_and_the_running_saving(
    runs: list[RunResult], tmp_path: Path
) -> None:
    first, second = runs[0], runs[1]
    figure = plots.layer_traffic(first, second)
    # a panel per scheme, the same bars and scale: no bar hides another
    for axes, run in zip(figure.axes[:2], (first, second), strict=True):
        drawn = sum(patch.get_height() for patch in axes.patches)
        assert drawn == pytest.approx(run.dram_bytes() / 1e6, rel=1e-12)
    assert figure.axes[0].get_ylim() == figure.axes[1].get_ylim()
    running = figure.axes[2].lines[0].get_ydata()
    assert running[-1] == pytest.approx((first.dram_bytes() - second.dram_bytes()) / 1e9)
    plots.save(figure, tmp_path / "layers.png")
    assert_image(tmp_path / "layers.png", min_width=800)


def test_roofline_places_every_kernel_with_work_and_traffic(
    runs: list[RunResult], tmp_path: Path
) -> None:
    """One panel per scheme; each kernel at FLOPs per byte its span moved, all under the roofs."""
    machine = load_machine(REPO / "hwconfigs" / "tiny.yaml")
    roofs = machine_roofs(machine)
    flops_roof, bytes_roof = roofs.flops_per_second, roofs.sustained_bytes_per_second
    assert bytes_roof == best_sustained_bandwidth(machine)
    figure = plots.roofline(runs, roofs)
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title().split(" (")[0] for axes in panels] == list(SCHEMES)
    for run, axes in zip(runs, panels, strict=True):
        drawn = [
            tuple(point)
            for collection in axes.collections
            if isinstance(collection, PathCollection)
            for point in collection.get_offsets()
        ]
        kernels = [k for k in run.kernels if k.flops and k.dram_transferred_bytes]
        seconds_per_cycle = run.seconds / run.cycles
        expected = [
            (k.flops / k.dram_transferred_bytes, k.flops / (k.cycles() * seconds_per_cycle) / 1e9)
            for k in kernels
        ]
        assert sorted(drawn) == pytest.approx(sorted(expected))
        for intensity, gflops in drawn:
            assert gflops * 1e9 <= min(flops_roof, intensity * bytes_roof) * (1 + 1e-9)
        # solid: sustained, dashed: the pins' peak, above it
        styles = {line.get_linestyle() for line in axes.lines}
        assert styles == {"-", "--"}
    plots.save(figure, tmp_path / "roofline.png")
    assert_image(tmp_path / "roofline.png")


def test_an_unknown_image_format_is_refused(runs: list[RunResult], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.jpg.*use \.png, \.svg or \.pdf"):
        plots.save(plots.traffic_breakdown(runs), tmp_path / "figure.jpg")
    assert list(tmp_path.iterdir()) == []


def test_scheme_colours_ignore_options_and_stay_put() -> None:
    assert scheme_color("bnff:wide_limit=64") == scheme_color("bnff")
    assert scheme_color("my_scheme") == scheme_color("my_scheme")
    assert len({scheme_color(s) for s in ("baseline", "fission", "bnff", "recompute")}) == 4
