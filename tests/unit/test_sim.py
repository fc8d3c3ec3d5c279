"""The simulator: hand-timed micro-cases, bounds, conservation, monotonicity and determinism."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from bnsim.config.machine import Machine, load_machine
from bnsim.errors import InfeasibleError, SimulationError
from bnsim.experiment.point import make_point, point_document
from bnsim.graph import build_network
from bnsim.graph.layer import Flatten, Input, Linear, ReLU, SoftmaxCrossEntropy
from bnsim.graph.zoo import build_model
from bnsim.result import KernelResult, OpTime, RunResult, TrafficRow
from bnsim.schedule import Axis, Kernel, Op, OpKind, Phase, Schedule, Tensor, TensorRole
from bnsim.schemes import build_schedule
from bnsim.sim import engine, simulate
from bnsim.sim.dramrate import WRITE_SHARES, channel_rates
from bnsim.sim.mlp import core_window
from bnsim.trace import BoxWork, SimOptions, Trace
from bnsim.trace._tiles import stream_ranges

REPO = Path(__file__).resolve().parents[2]


def machine(**overrides: str) -> Machine:
    """tiny.yaml: 2 cores at 1 GHz, 2 channels × 8 GB/s = 8 B/cycle each, 50 ns = 50 cycles."""
    base = load_machine(REPO / "hwconfigs" / "tiny.yaml")
    return base.with_overrides([f"{key}={value}" for key, value in overrides.items()])


def relu_schedule(channels: int, size: int, batch: int = 1) -> Schedule:
    """A schedule of a single ReLU kernel over a (batch, channels, size, size) input."""
    layers = [
        Input(name="input", channels=channels),
        ReLU(name="relu", inputs=("input",)),
        Flatten(name="flat", inputs=("relu",)),
        Linear(name="fc", inputs=("flat",), out_features=2),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    network = build_network("relu_only", layers, batch=batch, image=size)
    shape = (batch, channels, size, size)
    tensors = {
        "act:input": Tensor(name="act:input", shape=shape, role=TensorRole.INPUT, layer="input"),
        "act:relu": Tensor(name="act:relu", shape=shape, role=TensorRole.ACTIVATION, layer="relu"),
    }
    op = Op(
        kind=OpKind.RELU_FWD,
        layer="relu",
        reads=("act:input",),
        writes=("act:relu",),
        flops=math.prod(shape),
    )
    kernel = Kernel(
        name="relu.fwd",
        phase=Phase.FWD,
        ops=(op,),
        space=(Axis("n", batch), Axis("c", channels), Axis("h", size)),
    )
    return Schedule(network=network, scheme="test", options=(), kernels=(kernel,), tensors=tensors)


def test_one_tile_on_an_idle_channel_takes_transfer_plus_latency() -> None:
    """A 1-core machine with one channel reads 64 KiB and writes 64 KiB (non-temporal, posted): the
    reads take 64 KiB at the rate the channel sustains for half reads, half writes, then 50 cycles
    of latency; compute is 0.25 cycles per element × 16384 elements = 4096 cycles; the kernel adds
    its 100-cycle overhead."""
    m = machine(
        **{
            "cores.count": 1,
            "dram.channels": 1,
            "compute.nontemporal_stores": "true",
            "cores.max_outstanding_misses": 1024,
        }
    )
    result = simulate(relu_schedule(channels=16, size=32), m)
    bytes_per_cycle = np.interp(0.5, WRITE_SHARES, channel_rates(m)) / m.cores.clock_hz
    transfer = 64 * 1024 / bytes_per_cycle
    assert 4096 < transfer < 64 * 1024 / 6  # slower than the 8 B/cycle peak, faster than 75 %
    assert result.cycles == round(transfer + 50 + 100)
    assert result.dram_read_bytes == 64 * 1024
    assert result.dram_write_bytes == 64 * 1024
    assert result.kernels[0].bound() == "memory"


def test_two_cores_contending_for_one_channel_serialise() -> None:
    """Two 64 KiB tiles start together on two cores and share one channel, first come first served,
    each at the rate the channel sustains for half reads, half writes (T per 64 KiB): core 0's
    reads take 0-T, its posted writes T-2T, core 1's reads 2T-3T; core 1 then waits the 50-cycle
    latency, and the kernel adds its 100 cycles."""
    m = machine(
        **{
            "dram.channels": 1,
            "compute.nontemporal_stores": "true",
            "cores.max_outstanding_misses": 1024,
        }
    )
    result = simulate(relu_schedule(channels=16, size=32, batch=2), m)
    assert result.kernels[0].num_tiles == 2
    bytes_per_cycle = np.interp(0.5, WRITE_SHARES, channel_rates(m)) / m.cores.clock_hz
    transfer = 64 * 1024 / bytes_per_cycle
    assert result.cycles == round(3 * transfer + 50 + 100)
    assert result.core_busy_cycles == pytest.approx((transfer + 50, 3 * transfer + 50), abs=1)


def test_an_in_place_output_needs_no_read_for_ownership() -> None:
    """A ReLU over 64 KiB with ordinary stores on one core: writing a separate output reads each of
    its lines first (64 KiB read for ownership besides the 64 KiB input); written over its input
    (`storage`), every store hits a line the ReLU has just read, so only the input is read. Both
    write the 64 KiB back."""
    m = machine(
        **{
            "cores.count": 1,
            "compute.nontemporal_stores": "never",
            "cores.max_outstanding_misses": 1024,
        }
    )
    schedule = relu_schedule(channels=16, size=32)
    separate = simulate(schedule, m)
    tensors = dict(schedule.tensors)
    tensors["act:relu"] = dataclasses.replace(tensors["act:relu"], storage="act:input")
    in_place = simulate(dataclasses.replace(schedule, tensors=tensors), m)
    assert (separate.dram_read_bytes, separate.dram_write_bytes) == (2 * 65536, 65536)
    assert (in_place.dram_read_bytes, in_place.dram_write_bytes) == (65536, 65536)
    assert in_place.cycles < separate.cycles
    for fidelity in ("line", "analytic"):  # the other fidelities see the same memory
        options = SimOptions(fidelity=fidelity)
        other = simulate(dataclasses.replace(schedule, tensors=tensors), m, options)
        assert (other.dram_read_bytes, other.dram_write_bytes) == (65536, 65536)
        other = simulate(schedule, m, options)
        assert (other.dram_read_bytes, other.dram_write_bytes) == (2 * 65536, 65536)


def test_a_compute_bound_tile_takes_its_compute_time() -> None:
    m = machine(
        **{
            "cores.count": 1,
            "compute.nontemporal_stores": "true",
            "compute.cycles_per_element.relu_fwd": 100,
        }
    )
    result = simulate(relu_schedule(channels=16, size=32), m)
    assert result.cycles == 16 * 32 * 32 * 100 + 100
    assert result.kernels[0].bound() == "compute"


def test_little_law_bounds_a_core_with_few_outstanding_misses() -> None:
    """1 outstanding miss: each of the 1024 lines read waits the full 50-cycle latency, and each
    of the 1024 lines written (non-temporal) holds the one slot for its path to the controller:
    the 50 ns latency less the device's closed-bank read (tRCD 10 + CL 10 + a burst of 8 over a
    double data rate bus, 4: 24 clocks of 2 ns), 2 ns, 2 cycles."""
    m = machine(
        **{
            "cores.count": 1,
            "compute.nontemporal_stores": "true",
            "cores.max_outstanding_misses": 1,
        }
    )
    result = simulate(relu_schedule(channels=16, size=32), m)
    assert result.cycles == 1024 * 50 + 1024 * 2 + 100


@pytest.fixture(scope="module")
def tiny_runs() -> dict[str, RunResult]:
    network = build_model("tiny_cnn", batch=4, image=32)
    m = load_machine(REPO / "hwconfigs" / "tiny.yaml")
    return {
        scheme: simulate(build_schedule(network, scheme), m)
        for scheme in ("baseline", "bnff", "recompute", "fission", "bnff+sampling")
    }


def test_breakdowns_add_up_to_the_totals(tiny_runs: dict[str, RunResult]) -> None:
    for run in tiny_runs.values():
        for keys in (("phase", "layer_kind"), ("tensor_role",), ("op",), ("layer",)):
            rows = run.breakdown(*keys)
            assert sum(r["dram_read_bytes"] for r in rows) == run.dram_read_bytes
            assert sum(r["dram_write_bytes"] for r in rows) == run.dram_write_bytes
        assert sum(k.dram_read_bytes for k in run.kernels) == run.dram_read_bytes
        assert sum(r["cycles"] for r in run.breakdown("phase")) == sum(
            k.cycles() for k in run.kernels
        )
        assert sum(run.channel_bytes) == run.dram_read_bytes + run.dram_write_bytes


def test_each_channel_s_record_adds_up(tiny_runs: dict[str, RunResult]) -> None:
    """Per channel: its reads and writes sum to the run's; every burst is a row hit, miss or
    conflict (the model's shares per burst sum to one); a channel is busy no longer than the run;
    the record survives the result document."""
    m = load_machine(REPO / "hwconfigs" / "tiny.yaml")
    burst = m.dram.dram_device().burst_bytes
    for run in tiny_runs.values():
        channels = run.dram_channels
        assert len(channels) == m.dram.channels
        assert sum(c.read_bytes for c in channels) == pytest.approx(run.dram_read_bytes)
        assert sum(c.write_bytes for c in channels) == pytest.approx(run.dram_write_bytes)
        for channel in channels:
            bursts = (channel.read_bytes + channel.write_bytes) / burst
            rows = channel.row_hits + channel.row_misses + channel.row_conflicts
            assert rows == pytest.approx(bursts)
            assert 0 < channel.busy_seconds <= run.seconds
        assert RunResult.from_dict(run.to_dict()).dram_channels == channels


def test_breakdown_sums_rows_by_key_and_charges_cycles_to_ops() -> None:
    def row(kernel: int, phase: str, kind: str, read: int, write: int) -> TrafficRow:
        return TrafficRow(kernel, "op", "layer", kind, phase, "t", "weight", read, write)

    def kernel(phase: str, kind: str, start: int, end: int) -> KernelResult:
        return KernelResult("k", phase, ("op",), ("layer",), kind, start, end, 0, 0, 0, 0, 0, 0, 0)

    def op_time(index: int, phase: str, kind: str, cycles: int) -> OpTime:
        return OpTime(index, "op", "layer", kind, phase, 0, cycles)

    run = RunResult(
        scheme="baseline",
        fidelity="fast",
        cycles=60,
        seconds=1.0,
        flops=0,
        dram_read_bytes=7,
        dram_write_bytes=2,
        kernels=(kernel("fwd", "conv", 0, 10), kernel("fwd", "bn", 10, 60)),
        traffic=(
            row(0, "fwd", "conv", 1, 0),
            row(0, "fwd", "conv", 2, 2),
            row(1, "fwd", "bn", 4, 0),
        ),
        caches=(),
        core_busy_cycles=(),
        channel_bytes=(),
        num_events=0,
        op_times=(op_time(0, "fwd", "conv", 10), op_time(1, "fwd", "bn", 50)),
    )
    assert run.breakdown("layer_kind") == [
        {"layer_kind": "bn", "cycles": 50, "dram_read_bytes": 4, "dram_write_bytes": 0},
        {"layer_kind": "conv", "cycles": 10, "dram_read_bytes": 3, "dram_write_bytes": 2},
    ]
    assert run.breakdown() == [{"cycles": 60, "dram_read_bytes": 7, "dram_write_bytes": 2}]
    # time belongs to ops, which have no tensor role: a role breakdown carries bytes only
    assert run.breakdown("tensor_role") == [
        {"tensor_role": "weight", "cycles": None, "dram_read_bytes": 7, "dram_write_bytes": 2}
    ]
    summary = run.to_dict(details=False)
    whole = run.to_dict()
    assert list(summary) == [key for key in whole if key not in ("kernels", "traffic", "op_times")]
    assert summary == {key: whole[key] for key in summary}


def test_a_kernel_s_achieved_dram_bandwidth_is_what_its_span_moved_over_its_span() -> None:
    """5 bytes moved in 10 cycles of a 60 MHz clock (60 cycles in a microsecond): 30 MB/s, whatever
    bytes are charged to the kernel (3 + 9 here, written back later); an empty span achieves
    nothing; the document carries it and reading it back ignores it."""
    moved = KernelResult("k", "fwd", ("op",), ("l",), "conv", 0, 10, 0, 0, 0, 3, 9, 5, 1)
    empty = KernelResult("e", "fwd", ("op",), ("l",), "bn", 10, 10, 0, 0, 0, 0, 0, 0, 1)
    run = RunResult(
        scheme="baseline", fidelity="fast", cycles=60, seconds=1e-6, flops=0,
        dram_read_bytes=3, dram_write_bytes=9, kernels=(moved, empty), traffic=(), caches=(),
        core_busy_cycles=(), channel_bytes=(), num_events=0, op_times=(),
    )  # fmt: skip
    assert run.kernel_dram_bandwidth(moved) == pytest.approx(3e7)
    assert run.kernel_dram_bandwidth(empty) == 0.0
    document = run.to_dict()
    assert [k["dram_bytes_per_second"] for k in document["kernels"]] == pytest.approx([3e7, 0.0])
    assert RunResult.from_dict(document) == run


@pytest.mark.parametrize("scheme", ["baseline", "bnff", "recompute"])
def test_an_infinite_llc_leaves_only_compulsory_traffic(scheme: str, first_read_bytes) -> None:
    network = build_model("tiny_cnn", batch=4, image=32)
    m = machine(**{"llc.size": "64MiB"})
    schedule = build_schedule(network, scheme)
    result = simulate(schedule, m)
    first_reads = first_read_bytes(schedule, m)
    # every tensor first read from memory is read once; every stored tensor is written once, at the
    # end; a store that misses first reads its lines (write-allocate)
    stored = sum(
        Trace(schedule, m, SimOptions()).stored_bytes(n)
        for n, t in schedule.tensors.items()
        if not t.transient
    )
    assert result.dram_read_bytes <= stored + first_reads
    assert result.dram_read_bytes >= first_reads
    written = {
        n for k in schedule.kernels for n in k.memory_writes() if not schedule.tensor(n).transient
    }
    trace = Trace(schedule, m, SimOptions())
    assert result.dram_write_bytes == pytest.approx(
        sum(trace.stored_bytes(n) for n in written), rel=0.02
    )


def test_a_one_line_llc_misses_everything() -> None:
    network = build_model("tiny_cnn", batch=4, image=32)
    tiny_caches = machine(
        **{"llc.size": "512B", "llc.ways": 8, "private.size": "512B", "private.ways": 8}
    )
    schedule = build_schedule(network, "baseline")
    result = simulate(schedule, tiny_caches)
    llc = dict(result.caches)["llc"]
    assert llc.hits <= llc.accesses * 0.05
    big = simulate(schedule, machine(**{"llc.size": "64MiB"}))
    assert result.dram_read_bytes > 2 * big.dram_read_bytes


def test_cycles_never_beat_the_compute_or_bandwidth_bounds(tiny_runs: dict[str, RunResult]) -> None:
    m = load_machine(REPO / "hwconfigs" / "tiny.yaml")
    for run in tiny_runs.values():
        # no mix of reads and writes goes faster than the fastest a channel sustains
        bandwidth = m.dram.channels * max(channel_rates(m)) / m.cores.clock_hz
        assert run.cycles >= run.dram_bytes() / bandwidth
        compute = sum(k.compute_cycles for k in run.kernels) / m.cores.count
        assert run.cycles >= compute


def test_each_convolution_pass_computes_at_its_own_efficiency() -> None:
    """compute.conv_efficiency as a mapping: every baseline convolution kernel's compute time is
    its FLOPs over the cores' FMA rate (tiny: 8 FLOP/cycle) times its pass's efficiency."""
    schedule = build_schedule(build_model("tiny_cnn", batch=2, image=32), "baseline")
    efficiency = {"conv_fwd": 1.0, "conv_bwd_data": 0.5, "conv_bwd_weight": 0.25}
    run = simulate(
        schedule,
        machine(**{"compute.conv_efficiency": "{forward: 1.0, backward_data: 0.5, "
                   "backward_weight: 0.25}"}),
    )  # fmt: skip
    rate = machine().cores.flops_per_cycle()
    convolutions = [kernel for kernel in run.kernels if kernel.ops[0] in efficiency]
    assert {kernel.ops[0] for kernel in convolutions} == set(efficiency)
    for kernel in convolutions:
        expected = kernel.flops / (rate * efficiency[kernel.ops[0]])
        assert kernel.compute_cycles == pytest.approx(expected, abs=kernel.num_tiles)
    same = simulate(schedule, machine(**{"compute.conv_efficiency": "1.0"}))
    assert same.cycles < run.cycles


@settings(max_examples=8, deadline=None)
@given(st.integers(13, 22), st.integers(0, 3))
def test_a_larger_llc_never_adds_traffic(log_size: int, growth: int) -> None:
    network = build_model("tiny_cnn", batch=2, image=32)
    schedule = build_schedule(network, "bnff")
    small = simulate(
        schedule, machine(**{"llc.size": f"{2**log_size}B", "llc.ways": 1, "llc.block": "64B"})
    )
    large = simulate(
        schedule,
        machine(**{"llc.size": f"{2 ** (log_size + growth)}B", "llc.ways": 1, "llc.block": "64B"}),
    )
    assert large.dram_read_bytes <= small.dram_read_bytes
    assert large.dram_read_bytes + large.dram_write_bytes <= (
        small.dram_read_bytes + small.dram_write_bytes
    )


def test_bnff_moves_fewer_bytes_than_baseline(tiny_runs: dict[str, RunResult]) -> None:
    assert tiny_runs["bnff"].dram_bytes() < tiny_runs["baseline"].dram_bytes()
    assert tiny_runs["recompute"].dram_bytes() <= tiny_runs["bnff"].dram_bytes()
    assert tiny_runs["recompute"].flops > tiny_runs["bnff"].flops


def test_same_inputs_give_identical_json(tmp_path: Path) -> None:
    network = build_model("tiny_cnn", batch=2, image=32)
    m = load_machine(REPO / "hwconfigs" / "tiny.yaml")
    point = make_point(m, network, ["baseline", "bnff"])
    documents = []
    for _ in range(2):
        runs = [simulate(build_schedule(network, spec), m) for spec in point.schemes]
        documents.append(json.dumps(point_document(point, runs, "test"), sort_keys=True))
    assert documents[0] == documents[1]
    runs = [RunResult.from_dict(run) for run in json.loads(documents[0])["runs"]]
    assert runs[0] == simulate(build_schedule(network, "baseline"), m)


def test_a_result_survives_pickling_between_processes(tiny_runs: dict[str, RunResult]) -> None:
    run = tiny_runs["bnff"]
    copy = pickle.loads(pickle.dumps(run))
    assert copy == run
    assert copy.to_dict() == run.to_dict()
    assert type(copy.kernels[0]) is type(run.kernels[0])
    assert type(copy.traffic[0]) is type(run.traffic[0])
    with pytest.raises(AttributeError):  # still frozen
        copy.traffic[0].dram_read_bytes = 0  # type: ignore[misc]


def test_an_illegal_schedule_is_refused_before_simulating() -> None:
    schedule = relu_schedule(channels=16, size=8)
    kernel = schedule.kernels[0]
    broken_op = Op(kind=OpKind.RELU_FWD, layer="relu", reads=("act:relu",), writes=("act:relu2",))
    tensors = {
        **schedule.tensors,
        "act:relu2": Tensor(
            name="act:relu2", shape=(1, 16, 8, 8), role=TensorRole.ACTIVATION, layer="relu"
        ),
    }
    first = Kernel(name="early", phase=Phase.FWD, ops=(broken_op,), space=kernel.space)
    broken = Schedule(
        network=schedule.network,
        scheme="broken",
        options=(),
        kernels=(first, kernel),
        tensors=tensors,
    )
    with pytest.raises(
        SimulationError,
        match=r"kernel early: relu_fwd of relu reads act:relu before "
        r"it is produced",
    ):
        simulate(broken, machine())


def test_sampled_statistics_read_only_the_sampled_share() -> None:
    """Batch sampling 2 of 8 samples: the mean and variance passes read a quarter of the BN input
    (a 512 B LLC holds nothing between kernels, so every byte comes from DRAM)."""
    network = build_model("tiny_cnn", batch=8, image=32)
    m = machine(**{"llc.size": "512B", "llc.ways": 8, "private.size": "512B", "private.ways": 8})
    full = simulate(build_schedule(network, "baseline"), m)
    sampled = simulate(build_schedule(network, "sampling:fraction=0.25"), m)
    trace = Trace(build_schedule(network, "baseline"), m, SimOptions())
    x_bytes = trace.stored_bytes("act:stem.conv")

    def reads(run: RunResult, name: str) -> int:
        return next(k.dram_read_bytes for k in run.kernels if k.name == name)

    for name in ("stem.bn.fwd.mean", "stem.bn.fwd.var"):
        assert reads(full, name) >= x_bytes
        assert reads(sampled, name) == pytest.approx(reads(full, name) / 4, rel=0.02)
    assert sampled.dram_read_bytes < full.dram_read_bytes


def test_dram_traffic_lies_between_compulsory_and_accessed_bytes(
    tiny_runs: dict[str, RunResult], first_read_bytes
) -> None:
    """Reads are at least the first reads of everything the iteration starts from, and at most every
    byte the tiles touch (a store that misses reads its line once); writes at most all stores."""
    network = build_model("tiny_cnn", batch=4, image=32)
    m = load_machine(REPO / "hwconfigs" / "tiny.yaml")
    for scheme, run in tiny_runs.items():
        schedule = build_schedule(network, scheme)
        trace = Trace(schedule, m, SimOptions())
        touched = written = 0
        for index in range(len(schedule.kernels)):
            for box in trace.boxes(index)[0]:
                for start, stop, write, _ in box_ranges(box, m.llc.block_bytes):
                    touched += stop - start
                    written += (stop - start) if write else 0
        compulsory = first_read_bytes(schedule, m)
        assert compulsory <= run.dram_read_bytes <= touched + 64 * len(schedule.kernels)
        reduced = sum(
            trace.stored_bytes(r.tensor)
            for i in range(len(schedule.kernels))
            for r in trace.reductions(i)
        )
        assert run.dram_write_bytes <= written + reduced + 64 * len(schedule.kernels)


def box_ranges(box: BoxWork, line: int) -> list[tuple[int, int, bool, int]]:
    """Every byte range a box's streams issue, stream by stream."""
    found: list[tuple[int, int, bool, int]] = []
    for stream in box.streams:
        stream_ranges(stream, [0, 0, 0, 0, 0], stream[3], line, found)
    return found


def _boxes_as_simpy_processes(
    chip: engine._Chip,
    boxes: list,
    chunks: list[range],
    tally: engine._KernelTally,
    dynamic: bool,
) -> float:
    """The reference for engine._run_boxes: one SimPy process per core, a timeout per step; in a
    dynamic split each process takes the next box of one shared queue when it is free."""
    env = simpy.Environment(initial_time=chip.env.now)
    machine = chip.machine
    line = machine.llc.block_bytes
    private_cycles = machine.private.latency_cycles / line / machine.cores.max_outstanding_misses
    window = core_window(machine)
    llc_cycles = machine.llc.latency_cycles / line / window
    dram_cycles = chip.dram_latency_cycles / line / window
    write_cycles = chip.dram_write_cycles / line / window

    queue = iter(range(len(boxes)))

    def core_process(core: int, chunk: range | None):  # type: ignore[no-untyped-def]
        for index in queue if chunk is None else chunk:
            box = boxes[index]
            cursors = [[0, 0, 0, 0, 0] for _ in box.streams]
            for step in range(box.steps):
                accesses: list = []
                for stream, cursor in zip(box.streams, cursors, strict=True):
                    stream_ranges(
                        stream, cursor, stream[3] * (step + 1) // box.steps, line, accesses
                    )
                now = env.now
                private, hit, dram, read_done, wait = chip.memory.run_tile(core, accesses, now)
                if step:
                    read_done -= chip.dram_latency_cycles
                misses = private * private_cycles + hit * llc_cycles + dram * dram_cycles
                misses += chip.memory.step_dram_writes() * write_cycles
                memory = max(misses, read_done - now, wait - now)
                chip.memory.settle(now + memory)
                compute = box.compute_cycles / box.steps
                duration = max(compute, memory, 1.0)
                tally.flops += box.flops * (step + 1) // box.steps - box.flops * step // box.steps
                tally.compute_cycles += compute
                tally.memory_cycles += memory
                tally.num_tiles += 1
                chip.busy[core] += duration
                yield env.timeout(duration)

    if dynamic:
        for core in range(machine.cores.count):
            env.process(core_process(core, None))
    else:
        for core, chunk in enumerate(chunks):
            if chunk:
                env.process(core_process(core, chunk))
    env.run()
    return env.now


@pytest.mark.parametrize(
    ("workload", "hw"), [("tiny_cnn", "cmp16"), ("densenet121", "cmp16"), ("resnet50", "v100")]
)
def test_the_kernel_loop_orders_steps_as_simpy_processes_per_core(
    workload: str, hw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Static splits (cmp16) and the GPU's dynamic hand-out of CTAs (v100) alike."""
    network = build_model(workload, batch=2, image=32)
    m = load_machine(REPO / "hwconfigs" / f"{hw}.yaml").with_overrides(["dram.channels=2"])
    options = SimOptions(tiles_per_core=3, step_bytes=8192)
    runs = {}
    for scheme in ("baseline", "bnff"):
        schedule = build_schedule(network, scheme)
        fast = simulate(schedule, m, options)
        with monkeypatch.context() as patch:
            patch.setattr(engine, "_run_boxes", _boxes_as_simpy_processes)
            reference = simulate(schedule, m, options)
        runs[scheme] = (fast, reference)
    for fast, reference in runs.values():
        assert fast == reference


@pytest.mark.parametrize("override", ["cores.count=2000000000", "dram.channels=1000000"])
def test_a_machine_too_large_to_hold_in_memory_is_refused(override: str) -> None:
    """Per-core caches and per-channel queues would exhaust memory: refused up front (a fuzzed
    machine of 2e9 cores once took the test process to 24 GB)."""
    machine = load_machine(REPO / "hwconfigs" / "tiny.yaml", [override])
    schedule = build_schedule(build_model("tiny_cnn", batch=2), "baseline")
    for fidelity in ("fast", "analytic"):
        with pytest.raises(InfeasibleError, match="bnsim simulates at most 65,536"):
            simulate(schedule, machine, SimOptions(fidelity=fidelity))  # type: ignore[arg-type]
