"""What a notebook sees of a result: a short repr with units in its names."""

from __future__ import annotations

from pathlib import Path

import bnsim

REPO = Path(__file__).resolve().parents[2]


def test_a_runs_repr_is_its_totals_and_row_counts() -> None:
    machine = bnsim.load_machine(REPO / "hwconfigs" / "tiny.yaml")
    run = bnsim.simulate(bnsim.build_schedule(bnsim.load_workload("tiny_cnn"), "bnff"), machine)
    text = repr(run)
    assert text.startswith("RunResult(scheme='bnff', fidelity='fast', seconds=")
    assert f"cycles={run.cycles}, flops={run.flops}, dram_read_bytes={run.dram_read_bytes}" in text
    assert text.endswith(f"kernels=<{len(run.kernels)} rows>, traffic=<{len(run.traffic)} rows>)")
    assert len(text) < 300


def test_the_layer_classes_and_the_plots_are_reached_through_the_package() -> None:
    from bnsim.graph.layer import Conv2d  # noqa: PLC0415
    from bnsim.report.plots import roofline  # noqa: PLC0415

    assert bnsim.layers.Conv2d is Conv2d
    assert bnsim.plots.roofline is roofline
    assert {"layers", "plots"} <= set(dir(bnsim))
