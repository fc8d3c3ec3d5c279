"""What a notebook sees of a result: a short repr, tables as DataFrames, the package's names."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_every_public_name_resolves_and_type_checkers_see_the_same_names() -> None:
    import ast  # noqa: PLC0415

    source = Path(bnsim.__file__).read_text()
    checked = next(
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    mirrored = {
        alias.asname or alias.name
        for node in checked.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert mirrored == set(bnsim.__all__) - {"__version__"}
    for name in bnsim.__all__:
        assert getattr(bnsim, name) is not None
    with pytest.raises(AttributeError, match="has no attribute 'Simulate'"):
        _ = bnsim.Simulate  # type: ignore[attr-defined]


def test_a_runs_tables_are_dataframes_with_units_in_their_column_names() -> None:
    pytest.importorskip("pandas", reason="needs pandas (bnsim[notebook])")
    machine = bnsim.load_machine(REPO / "hwconfigs" / "tiny.yaml")
    run = bnsim.simulate(bnsim.build_schedule(bnsim.load_workload("tiny_cnn"), "bnff"), machine)
    kernels = run.to_dataframe("kernels")
    assert len(kernels) == len(run.kernels)
    assert list(kernels.columns[:4]) == ["scheme", "fidelity", "name", "phase"]
    assert kernels["dram_read_bytes"].sum() == sum(k.dram_read_bytes for k in run.kernels)
    assert kernels["cycles"].dtype.kind == "i"
    traffic = run.to_dataframe("traffic")
    assert traffic["dram_write_bytes"].sum() == sum(row.dram_write_bytes for row in run.traffic)
    summary = run.to_dataframe("summary")
    assert summary.to_dict("records") == [
        {
            "scheme": "bnff",
            "fidelity": "fast",
            "cycles": run.cycles,
            "seconds": run.seconds,
            "flops": run.flops,
            "dram_read_bytes": run.dram_read_bytes,
            "dram_write_bytes": run.dram_write_bytes,
        }
    ]
    breakdown = run.to_dataframe("breakdown")
    assert set(breakdown.columns) >= {"phase", "layer_kind", "cycles", "dram_read_bytes"}
    assert breakdown["dram_read_bytes"].sum() == run.dram_read_bytes
    assert breakdown["cycles"].sum() == run.cycles
    op_times = run.to_dataframe("op_times")
    assert op_times.groupby("kernel")["cycles"].sum().tolist() == [k.cycles() for k in run.kernels]
    with pytest.raises(
        ValueError, match="no table 'tiles': kernels, traffic, op_times, breakdown or summary"
    ):
        run.to_dataframe("tiles")
