"""Time charged to ops: a kernel's span split over its ops by what bounds it, worked by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnsim.config.machine import load_machine
from bnsim.graph.zoo import build_model
from bnsim.result import KernelResult, TrafficRow
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.sim.attribution import OpWork, op_times, split_whole
from bnsim.trace import SimOptions

REPO = Path(__file__).resolve().parents[2]


def kernel(compute: int, memory: int, span: int) -> KernelResult:
    return KernelResult(
        "k", "fwd", ("conv_fwd", "relu_fwd"), ("c", "r"), "conv", 0, span, 0, compute, memory,
        0, 0, 0, 1,
    )  # fmt: skip


def traffic(conv_bytes: int, relu_bytes: int) -> tuple[TrafficRow, ...]:
    return (
        TrafficRow(0, "conv_fwd", "c", "conv", "fwd", "x", "activation", conv_bytes, 0),
        TrafficRow(0, "relu_fwd", "r", "relu", "fwd", "y", "activation", 0, relu_bytes),
    )


WORK = [[OpWork("conv_fwd", "c", "conv", 900.0), OpWork("relu_fwd", "r", "relu", 100.0)]]


def test_a_compute_bound_kernel_s_span_goes_by_compute_cycles() -> None:
    rows = op_times([kernel(1000, 10, 101)], WORK, traffic(30, 70))
    # 101 × 0.9 = 90.9 and 10.1: floors 90 and 10, the spare cycle to the larger remainder
    assert [(row.op, row.layer_kind, row.cycles) for row in rows] == [
        ("conv_fwd", "conv", 91),
        ("relu_fwd", "relu", 10),
    ]
    assert [row.compute_cycles for row in rows] == [900, 100]


def test_a_memory_bound_kernel_s_span_goes_by_dram_bytes() -> None:
    rows = op_times([kernel(10, 1000, 100)], WORK, traffic(30, 70))
    assert [row.cycles for row in rows] == [30, 70]
    # no bytes of its own: by compute cycles after all
    rows = op_times([kernel(10, 1000, 100)], WORK, ())
    assert [row.cycles for row in rows] == [90, 10]


def test_whole_shares_add_up_to_the_total() -> None:
    assert split_whole(10, [1, 1, 1]) == [4, 3, 3]
    assert split_whole(7, [0.0, 2.0, 5.0]) == [0, 2, 5]
    assert split_whole(0, [3.0, 1.0]) == [0, 0]
    assert sum(split_whole(1_000_003, [0.1, 0.2, 0.3, 0.4])) == 1_000_003


@pytest.mark.parametrize("fidelity", ["fast", "analytic"])
def test_fused_ops_get_time_with_their_bytes_and_the_time_adds_up(fidelity: str) -> None:
    """bnff runs ReLU inside convolutions: its bytes and its time both land on relu."""
    machine = load_machine(REPO / "hwconfigs" / "tiny.yaml")
    network = build_model("tiny_cnn", batch=4, image=32)
    run = simulate(build_schedule(network, "bnff"), machine, SimOptions(fidelity=fidelity))
    spans = [0] * len(run.kernels)
    for row in run.op_times:
        spans[row.kernel] += row.cycles
    assert spans == [kernel.cycles() for kernel in run.kernels]
    rows = run.breakdown("layer_kind", "phase")
    assert sum(row["cycles"] for row in rows) == sum(k.cycles() for k in run.kernels)
    for row in rows:
        if row["dram_read_bytes"] + row["dram_write_bytes"] > 0 and row["layer_kind"] != "other":
            assert row["cycles"] > 0, row
    relu = [row for row in rows if row["layer_kind"] == "relu"]
    assert relu
    assert all(row["cycles"] > 0 for row in relu)
    assert all(k.layer_kind != "relu" for k in run.kernels if k.phase == "fwd")
