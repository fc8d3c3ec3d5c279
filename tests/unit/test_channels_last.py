"""Channels-last (NHWC) activations: the bytes a kernel moves, oneDNN's brgemm convolution split
and ATen's pixel split worked by hand, no activation copies, and unchanged values.

The splits are those oneDNN v3.12 (PyTorch 2.13's) computes for ResNet-50 at batch 8 on two
threads, read from its `jcp` (docs/model.md, "Channels-last kernels").
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bnsim.config.machine import Machine, load_machine
from bnsim.graph import build_network
from bnsim.graph.layer import Flatten, Input, Linear, SoftmaxCrossEntropy
from bnsim.graph.zoo import build_model
from bnsim.schedule import Axis, Kernel, Op, OpKind, Phase, Reorders, Schedule, Tensor, TensorRole
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.trace import SimOptions, Trace, library_reorders
from bnsim.trace.dataflow import (
    input_order_is_channel_outer,
    input_passes,
    split_work,
    weight_passes,
)
from bnsim.verify import verify

REPO = Path(__file__).resolve().parents[2]
ZEN4 = load_machine(REPO / "hwconfigs" / "zen4-2c.yaml")
NHWC = ZEN4.with_overrides(["compute.layout=nhwc"])
RESNET50 = build_model("resnet50", batch=8)
SCHEDULE = build_schedule(RESNET50, "baseline", reorders=library_reorders(NHWC))


def kernel_named(name: str) -> Kernel:
    return next(kernel for kernel in SCHEDULE.kernels if kernel.name == name)


def relu_schedule(channels: int, size: int) -> Schedule:
    """One out-of-place ReLU of a (1, channels, size, size) activation, as its own kernel."""
    layers = [
        Input(name="input", channels=channels),
        Flatten(name="flat", inputs=("input",)),
        Linear(name="fc", inputs=("flat",), out_features=2),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    network = build_network("relu_only", layers, batch=1, image=size)
    shape = (1, channels, size, size)
    source = Tensor(name="act:x", shape=shape, role=TensorRole.ACTIVATION, layer="input")
    target = Tensor(name="act:y", shape=shape, role=TensorRole.ACTIVATION, layer="input")
    op = Op(kind=OpKind.RELU_FWD, layer="input", reads=(source.name,), writes=(target.name,))
    kernel = Kernel(
        name="relu.fwd",
        phase=Phase.FWD,
        ops=(op,),
        space=(Axis("n", 1), Axis("c", channels), Axis("h", size)),
    )
    return Schedule(
        network=network,
        scheme="test",
        options=(),
        kernels=(kernel,),
        tensors={source.name: source, target.name: target},
    )


def one_core(layout: str) -> Machine:
    return load_machine(REPO / "hwconfigs" / "tiny.yaml").with_overrides(
        [
            "cores.count=1",
            f"compute.layout={layout}",
            "compute.nontemporal_stores=never",
            "cores.max_outstanding_misses=1024",
        ]
    )


@pytest.mark.parametrize("fidelity", ["fast", "line", "analytic"])
@pytest.mark.parametrize(("layout", "stored"), [("nhwc", 80 * 1024), ("nChw16c", 128 * 1024)])
def test_an_nhwc_tensor_is_not_padded(fidelity: str, layout: str, stored: int) -> None:
    """20 channels of 32 × 32 fp32 are 80 KiB in NHWC; nChw16c pads them to 32 channels, 128 KiB.
    A ReLU on one core reads its input, reads its output's lines for ownership and writes them."""
    result = simulate(
        relu_schedule(channels=20, size=32), one_core(layout), SimOptions(fidelity=fidelity)
    )
    assert (result.dram_read_bytes, result.dram_write_bytes) == (2 * stored, stored)


def test_channels_last_activations_are_not_copied_and_weights_are() -> None:
    assert Reorders.of("onednn", "pytorch", "nhwc") == Reorders(weights=True)
    copied = {
        kernel.main_op().reads[0].split(":")[0]
        for kernel in SCHEDULE.kernels
        if kernel.main_op().kind is OpKind.REORDER
    }
    assert copied == {"w", "dw"}


def test_nhwc_activations_lie_pixel_by_pixel() -> None:
    trace = Trace(SCHEDULE, NHWC, SimOptions())
    # conv1's output: 8 × 64 × 112 × 112; its row 5 of image 1 is one run of 112 pixels
    (start, stop), *rest = trace.runs("act:conv1", {"n": (1, 2), "h": (5, 6)})
    assert (stop - start, rest) == (112 * 64 * 4, [])
    # its channels 16..32: a 64-byte run per pixel, one pixel (256 bytes) apart
    found = trace.runs("act:conv1", {"n": (0, 1), "c": (16, 32), "h": (0, 1)})
    assert [stop - start for start, stop in found] == [64] * 112
    assert {b[0] - a[0] for a, b in itertools.pairwise(found)} == {256}


def test_batch_norm_and_relu_split_by_pixels_in_memory_order() -> None:
    """ATen's channels-last kernels: N·H rows halved between the threads, every channel."""
    for name in ("bn1.fwd.mean", "bn1.fwd.apply", "relu.fwd"):
        work = split_work(SCHEDULE, kernel_named(name), NHWC)
        assert work.threads == ((((0, 4), (0, 64), (0, 112)),), (((4, 8), (0, 64), (0, 112)),))


@pytest.fixture
def items(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every brgemm work item a box of its own: the library's items as they are."""
    from bnsim.trace import dataflow  # noqa: PLC0415
    from bnsim.trace.dataflow import nhwc  # noqa: PLC0415

    monkeypatch.setattr(nhwc, "RESIDENT_SHARE", 0.0)
    monkeypatch.setattr(dataflow, "_SPLITS", {})


@pytest.mark.usefixtures("items")
def test_a_wide_image_walks_rows_with_channel_blocks_innermost() -> None:
    """3×3 64→64 at 56×56: 64-channel blocks (oc < 192), loop_ndhwgc (3136 pixels ≥ 64·9):
    thread 0 runs images 0-3 row by row."""
    kernel = kernel_named("layer1.0.conv2.fwd")
    work = split_work(SCHEDULE, kernel, NHWC)
    assert work.threads[0][:2] == (((0, 1), (0, 64), (0, 1)), ((0, 1), (0, 64), (1, 2)))
    assert len(work.threads[0]) == 4 * 56
    assert work.threads[1][0] == ((4, 5), (0, 64), (0, 1))
    assert not input_order_is_channel_outer(SCHEDULE, kernel, NHWC)
    assert input_passes(SCHEDULE, kernel, NHWC) == 1
    assert weight_passes(SCHEDULE, kernel, NHWC) == (4 * 56, 1)  # each core's rows


@pytest.mark.usefixtures("items")
def test_a_small_image_walks_each_channel_block_over_all_rows() -> None:
    """3×3 128→128 at 28×28: loop_ngcdhw (784 < 128·9), two 64-channel blocks, each over the
    image's 28 rows: the input is read once per block, the weights once per image (the two
    cores reading the same block at once)."""
    kernel = kernel_named("layer2.1.conv2.fwd")
    work = split_work(SCHEDULE, kernel, NHWC)
    assert work.threads[0][:3] == (
        ((0, 1), (0, 64), (0, 28)),
        ((0, 1), (64, 128), (0, 28)),
        ((1, 2), (0, 64), (0, 28)),
    )
    assert input_passes(SCHEDULE, kernel, NHWC) == 2
    assert not input_order_is_channel_outer(SCHEDULE, kernel, NHWC)  # image by image
    assert weight_passes(SCHEDULE, kernel, NHWC) == (4, 1)  # each core's images


@pytest.mark.usefixtures("items")
def test_one_by_one_blocks_of_48_and_the_data_gradient_split_over_input_channels() -> None:
    """1×1 256→1024 at 14×14: 48-channel blocks (1024 fills 22 of them to 97 %), the last 16
    wide; its data gradient runs as a forward 1024→256, split over the input gradient's 256
    channels in 64-channel blocks (256 fills 48-channel blocks to 89 % only)."""
    forward = split_work(SCHEDULE, kernel_named("layer3.0.conv3.fwd"), NHWC)
    blocks = [box[1] for box in forward.threads[0] if box[0] == (0, 1)]
    assert blocks[:2] == [(0, 48), (48, 96)]
    assert blocks[-1] == (1008, 1024)
    assert len(blocks) == 22
    backward = split_work(SCHEDULE, kernel_named("layer3.0.conv3.bwd_data"), NHWC)
    assert {box[1] for box in backward.threads[1]} == {(0, 64), (64, 128), (128, 192), (192, 256)}


def test_nhwc_splits_cover_every_kernel_once() -> None:
    for kernel in SCHEDULE.kernels:
        volume = 1
        for axis in kernel.space:
            volume *= axis.extent
        covered = 0
        for box in split_work(SCHEDULE, kernel, NHWC).boxes():
            size = 1
            for start, stop in box:
                size *= stop - start
            covered += size
        assert covered == volume, kernel.name


@pytest.mark.parametrize(("model", "scheme"), [("resnet50", "baseline"), ("densenet121", "bnff")])
def test_schedules_split_as_on_channels_last_tensors_match_the_reference(
    model: str, scheme: str
) -> None:
    report = verify(build_model(model), scheme, machine=NHWC)
    assert report.passed, report.worst


def test_items_whose_re_reads_stay_cached_make_one_box() -> None:
    """3×3 64→64 at 56×56: a row's input (3 rows of 56 pixels × 64 channels, 43 KB) and the
    weights (147 KB) fit in half the 1 MiB private cache, so each image's rows and blocks make
    one box; 1×1 256→1024 at 14×14 (rows innermost): the image's input (200 KB) does, so its
    blocks make one box per image too."""
    work = split_work(SCHEDULE, kernel_named("layer1.0.conv2.fwd"), NHWC)
    assert work.threads[0] == tuple(((i, i + 1), (0, 64), (0, 56)) for i in range(4))
    work = split_work(SCHEDULE, kernel_named("layer3.0.conv3.fwd"), NHWC)
    assert work.threads[1] == tuple(((i, i + 1), (0, 1024), (0, 14)) for i in range(4, 8))


def test_merging_items_into_boxes_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Merging a thread's consecutive brgemm items into one box where what they re-read stays in
    the private cache is a simulation grain: with every item a box of its own, DRAM bytes and
    cycles move by under 0.5 % and 0.1 % (docs/performance.md measures at most 0.21 % and
    0.013 % for ResNet-50 and DenseNet-121 at batch 8 and 32)."""
    from bnsim.trace import dataflow  # noqa: PLC0415
    from bnsim.trace.dataflow import nhwc  # noqa: PLC0415

    schedule = build_schedule(
        build_model("densenet121", batch=2, image=64), "bnff", reorders=library_reorders(NHWC)
    )
    merged = simulate(schedule, NHWC)
    monkeypatch.setattr(nhwc, "RESIDENT_SHARE", 0.0)
    monkeypatch.setattr(dataflow, "_SPLITS", {})
    separate = simulate(schedule, NHWC)
    moved = merged.dram_read_bytes + merged.dram_write_bytes
    assert moved == pytest.approx(separate.dram_read_bytes + separate.dram_write_bytes, rel=5e-3)
    assert merged.cycles == pytest.approx(separate.cycles, rel=1e-3)
    assert merged != separate  # the grains differ
