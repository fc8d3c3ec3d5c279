"""Figures: every kind drawn from real runs, and the numbers drawn equal the results' numbers."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from matplotlib.collections import PathCollection
from PIL import Image

from bnsim.errors import ConfigError
from bnsim.graph.zoo import build_model
from bnsim.hw import load_machine
from bnsim.report import plots
from bnsim.report.plotdata import breakdown_table, scheme_color, sweep_table
from bnsim.result import RunResult
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.sim.dramrate import sustained_bandwidth

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
    axes = figure.axes[0]
    drawn = sum(patch.get_height() for patch in axes.patches[: len(axes.patches) // 2])
    assert drawn == pytest.approx(first.dram_bytes() / 1e6, rel=1e-12)
    running = figure.axes[1].lines[0].get_ydata()
    assert running[-1] == pytest.approx((first.dram_bytes() - second.dram_bytes()) / 1e9)
    plots.save(figure, tmp_path / "layers.png")
    assert_image(tmp_path / "layers.png", min_width=800)


def test_roofline_places_every_kernel_with_work_and_traffic(
    runs: list[RunResult], tmp_path: Path
) -> None:
    machine = load_machine(REPO / "hwconfigs" / "tiny.yaml")
    figure = plots.roofline(runs, machine.peak_flops_per_second(), sustained_bandwidth(machine))
    scatters = [c for c in figure.axes[0].collections if isinstance(c, PathCollection)]
    for run, scatter in zip(runs, scatters, strict=True):
        kernels = [k for k in run.kernels if k.flops and k.dram_read_bytes + k.dram_write_bytes]
        points = scatter.get_offsets()
        assert len(points) == len(kernels)
        kernel = kernels[0]
        seconds = kernel.cycles() * run.seconds / run.cycles
        intensity = kernel.flops / (kernel.dram_read_bytes + kernel.dram_write_bytes)
        assert points[0][0] == pytest.approx(intensity)
        assert points[0][1] == pytest.approx(kernel.flops / seconds / 1e9)
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
