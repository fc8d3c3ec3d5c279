"""What physics allows a kernel, and two fidelities of one model agreeing, at batch 32.

Each convolution kernel moves at most 1.5× the bytes its loop order reads and writes: each operand
once; its input once per pass the library's loop order makes over it (MKL-DNN's direct
convolutions: once per 16-channel block of output); its weights once per pass where one pass's
share overflows the LLC (MKL-DNN's direct convolutions: once per image; CUTLASS: once per wave of
CTAs); each output once; the read for ownership of an output the library stores through the
caches (MKL-DNN's direct convolutions store with ordinary `vmovups`, and a store that misses reads
its line first); and, for a weight gradient, the partial sums of the threads that split its
images and, where it overflows the LLC, the input once per group of threads that split its
output channels. And fast fidelity and the closed form move the same DRAM bytes within 10 %. On
cmp16 here; every bundled machine, and the ratio to each operand read once, in
docs/performance.md (Physical bounds).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bnsim.config.machine import load_machine
from bnsim.graph.zoo import build_model
from bnsim.schedule import OpKind, Schedule
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.sim.dramrate import best_sustained_bandwidth
from bnsim.sim.reduction import shared_channels
from bnsim.trace import SimOptions, Trace, library_reorders
from bnsim.trace.dataflow import FETCH, input_passes, store_kind, weight_passes

REPO = Path(__file__).resolve().parents[2]
CMP16 = load_machine(REPO / "hwconfigs" / "cmp16.yaml")
SCHEMES = ("baseline", "fission", "bnff", "recompute", "bnff+sampling")
CONV_KINDS = (OpKind.CONV_FWD, OpKind.CONV_BWD_DATA, OpKind.CONV_BWD_WEIGHT)


def necessary_bytes(schedule: Schedule, trace: Trace, index: int, *, passes: bool = False) -> int:
    """Each tensor the kernel reads from memory once (with `passes`: its input and weights once
    per pass of the library's loop order, as the module says, and the partial sums), each it
    stores once, and the line reads of stores that read for ownership."""
    kernel = schedule.kernels[index]
    tensors = schedule.tensors
    total = sum(trace.stored_bytes(name) for name in kernel.memory_reads())
    if passes:
        main = kernel.main_op()
        extra = input_passes(schedule, kernel, trace.machine) - 1
        total += extra * trace.stored_bytes(main.reads[0])
        # the weights' passes, where the part of them that one pass reads overflows the LLC
        weight_reads, strips = weight_passes(schedule, kernel, trace.machine)
        weights = trace.stored_bytes(main.reads[1]) if weight_reads > 1 else 0
        if weights > strips * trace.machine.llc.size_bytes:
            total += (weight_reads - 1) * weights
        total += partial_sum_bytes(trace, index) + channel_group_bytes(trace, index)
    for position, op in enumerate(kernel.ops):
        fetched = store_kind(schedule, kernel, position, trace.machine) == FETCH
        for name in op.writes:
            if not tensors[name].transient:
                total += trace.stored_bytes(name) * (2 if fetched else 1)
    return total


def partial_sum_bytes(trace: Trace, index: int) -> int:
    """The partial sums of a reduction beyond one copy: the threads that split a weight
    gradient's images each write their own (MKL-DNN's reduction buffers; bnsim's GPU combines a
    split reduction's partial sums on chip)."""
    kernel = trace.schedule.kernels[index]
    axes = [axis.name for axis in kernel.space]
    if "c" not in axes or trace.machine.compute.library != "onednn":
        return 0
    copies = shared_channels(trace.work(index).threads, axes.index("c"))
    per_channel = sum(reduction.channel_axis_elements for reduction in trace.reductions(index))
    return copies * per_channel * trace.machine.dtype_bytes()


def channel_group_bytes(trace: Trace, index: int) -> int:
    """A weight gradient whose threads split the output channels: each group of threads reads
    the whole input, which is read again per group where it overflows the LLC."""
    kernel = trace.schedule.kernels[index]
    main = kernel.main_op()
    source = trace.stored_bytes(main.reads[0])
    if main.kind is not OpKind.CONV_BWD_WEIGHT or source <= trace.machine.llc.size_bytes:
        return 0
    groups = {box[0] for thread in trace.work(index).threads for box in thread}
    return (len(groups) - 1) * source


@pytest.mark.parametrize(
    ("machine_name", "model"),
    [
        ("cmp16", "densenet121"),
        ("cmp16", "resnet50"),
        ("zen4-2c-nhwc", "resnet50"),  # channels-last: oneDNN's brgemm loop orders
        pytest.param("v100", "resnet50", marks=pytest.mark.slow),  # 2 minutes
        pytest.param("tiny", "resnet50", marks=pytest.mark.slow),
    ],
)
def test_convolutions_move_at_most_one_and_a_half_times_what_they_must(
    machine_name: str, model: str
) -> None:
    machine = (
        CMP16
        if machine_name == "cmp16"
        else load_machine(REPO / "hwconfigs" / f"{machine_name}.yaml")
    )
    network = build_model(model, batch=32)
    for scheme in SCHEMES:
        schedule = build_schedule(network, scheme, reorders=library_reorders(machine))
        trace = Trace(schedule, machine, SimOptions())
        fast = simulate(schedule, machine)
        analytic = simulate(schedule, machine, SimOptions(fidelity="analytic"))
        for index, kernel in enumerate(schedule.kernels):
            if kernel.main_op().kind in CONV_KINDS:
                moved = fast.kernels[index].dram_read_bytes + fast.kernels[index].dram_write_bytes
                allowed = 1.5 * necessary_bytes(schedule, trace, index, passes=True)
                assert moved <= allowed, kernel.name
        fast_bytes = fast.dram_read_bytes + fast.dram_write_bytes
        analytic_bytes = analytic.dram_read_bytes + analytic.dram_write_bytes
        assert analytic_bytes == pytest.approx(fast_bytes, rel=0.10), scheme


@pytest.mark.parametrize(
    "hardware", sorted(path.stem for path in (REPO / "hwconfigs").glob("*.yaml"))
)
@pytest.mark.parametrize("fidelity", ["fast", "line", "analytic"])
def test_no_kernel_beats_a_roof(hardware: str, fidelity: str) -> None:
    """Over its span, every kernel does at most the cores' peak FLOP/s and its span moves at most
    what the DRAM channels sustain at their best mix; what the spans moved adds up to the
    iteration's DRAM bytes less what moves after the last kernel (the final write-backs)."""
    machine = load_machine(REPO / "hwconfigs" / f"{hardware}.yaml")
    network = build_model("mobilenet_v2", batch=2, image=32)
    flops_roof = machine.peak_flops_per_second()
    bytes_roof = best_sustained_bandwidth(machine)
    for scheme in SCHEMES:
        schedule = build_schedule(network, scheme, reorders=library_reorders(machine))
        run = simulate(schedule, machine, SimOptions(fidelity=fidelity))
        seconds_per_cycle = run.seconds / run.cycles
        for kernel in run.kernels:
            seconds = kernel.cycles() * seconds_per_cycle
            assert kernel.flops <= flops_roof * seconds * (1 + 1e-9), (scheme, kernel.name)
            assert kernel.dram_transferred_bytes <= bytes_roof * seconds * (1 + 1e-9) + 1, (
                scheme,
                kernel.name,
            )
        moved = sum(kernel.dram_transferred_bytes for kernel in run.kernels)
        if fidelity == "analytic":  # the model times each kernel by the bytes charged to it
            assert moved == run.dram_bytes()
        else:
            flushed = run.dram_bytes() - moved
            assert (
                0
                <= flushed
                <= machine.llc.size_bytes + machine.cores.count * machine.private.size_bytes
            )
