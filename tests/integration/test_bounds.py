"""What physics allows a kernel, and two fidelities of one model agreeing, at batch 32.

Each convolution kernel moves at most 1.5× the bytes its loop order reads and writes: each operand
once, its input once per pass the library's loop order makes over it (MKL-DNN's direct
convolutions: once per 16-channel block of output), each output once, and the read for ownership of
an output the library stores through the caches (MKL-DNN's direct convolutions store with ordinary
`vmovups`, and a store that misses reads its line first); and fast fidelity and the closed form
move the same DRAM bytes within 10 %. On cmp16 here; both bundled machines, and the ratio to each
operand read once, in docs/performance.md (Physical bounds).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bnsim.dataflow import FETCH, input_passes, store_kind
from bnsim.graph.zoo import build_model
from bnsim.hw import load_machine
from bnsim.schedule import OpKind, Schedule
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.trace import SimOptions, Trace

REPO = Path(__file__).resolve().parents[2]
CMP16 = load_machine(REPO / "hwconfigs" / "cmp16.yaml")
SCHEMES = ("baseline", "fission", "bnff", "recompute", "bnff+sampling")
CONV_KINDS = (OpKind.CONV_FWD, OpKind.CONV_BWD_DATA, OpKind.CONV_BWD_WEIGHT)


def necessary_bytes(schedule: Schedule, trace: Trace, index: int, *, passes: bool = False) -> int:
    """Each tensor the kernel reads from memory once (with `passes`, its main input once per pass
    of the library's loop order), each it stores once, and the line reads of stores that read for
    ownership."""
    kernel = schedule.kernels[index]
    tensors = schedule.tensors
    total = sum(trace.stored_bytes(name) for name in kernel.memory_reads())
    if passes:
        extra = input_passes(schedule, kernel, trace.machine) - 1
        total += extra * trace.stored_bytes(kernel.main_op().reads[0])
    for position, op in enumerate(kernel.ops):
        fetched = store_kind(schedule, kernel, position, trace.machine) == FETCH
        for name in op.writes:
            if not tensors[name].transient:
                owned = fetched and name not in op.reduces  # sums are written once, at the end
                total += trace.stored_bytes(name) * (2 if owned else 1)
    return total


@pytest.mark.parametrize("model", ["densenet121", "resnet50"])
def test_convolutions_move_at_most_one_and_a_half_times_what_they_must(model: str) -> None:
    network = build_model(model, batch=32)
    for scheme in SCHEMES:
        schedule = build_schedule(network, scheme)
        trace = Trace(schedule, CMP16, SimOptions())
        fast = simulate(schedule, CMP16)
        analytic = simulate(schedule, CMP16, SimOptions(fidelity="analytic"))
        for index, kernel in enumerate(schedule.kernels):
            if kernel.main_op().kind in CONV_KINDS:
                moved = fast.kernels[index].dram_read_bytes + fast.kernels[index].dram_write_bytes
                allowed = 1.5 * necessary_bytes(schedule, trace, index, passes=True)
                assert moved <= allowed, kernel.name
        fast_bytes = fast.dram_read_bytes + fast.dram_write_bytes
        analytic_bytes = analytic.dram_read_bytes + analytic.dram_write_bytes
        assert analytic_bytes == pytest.approx(fast_bytes, rel=0.10), scheme
