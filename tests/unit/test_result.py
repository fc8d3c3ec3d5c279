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
