"""The library work splits, store kinds, first touch and stream cuts, worked by hand."""

from __future__ import annotations

from pathlib import Path

from bnsim.config.machine import load_machine
from bnsim.graph.zoo import build_model
from bnsim.schedule import OpKind, Placement
from bnsim.schemes import build_schedule
from bnsim.trace import SimOptions, Trace
from bnsim.trace._tiles import _first_touch, stream_ranges
from bnsim.trace.dataflow import (
    ALLOCATE,
    FETCH,
    STREAM,
    input_passes,
    split_work,
    store_kind,
    weight_passes,
)

REPO = Path(__file__).resolve().parents[2]
CMP16 = load_machine(REPO / "hwconfigs" / "cmp16.yaml")
V100 = load_machine(REPO / "hwconfigs" / "v100.yaml")


def kernel_named(schedule, name):  # type: ignore[no-untyped-def]
    return next(kernel for kernel in schedule.kernels if kernel.name == name)


def test_a_pointwise_convolution_gives_each_thread_images_and_every_channel() -> None:
    schedule = build_schedule(build_model("densenet121", batch=32), "baseline")
    kernel = kernel_named(schedule, "features.denseblock1.denselayer1.conv1.fwd")  # 1×1, 128 out
    work = split_work(schedule, kernel, CMP16)
    assert len(work.threads) == 16
    # 32 images × 56 rows over 16 threads: two whole images each, all 128 output channels
    assert work.threads[3] == (((6, 8), (0, 128), (0, 56)),)
    assert input_passes(schedule, kernel, CMP16) == 1


def test_a_direct_convolution_walks_image_by_image_one_channel_block_at_a_time() -> None:
    schedule = build_schedule(build_model("densenet121", batch=32), "baseline")
    kernel = kernel_named(schedule, "features.denseblock1.denselayer1.conv2.fwd")  # 3×3, 32 out
    work = split_work(schedule, kernel, CMP16)
    # 32 images × 2 blocks × 56 rows over 16 threads: image 2t then 2t+1, block 0 then block 1
    assert work.threads[1] == (
        ((2, 3), (0, 16), (0, 56)),
        ((2, 3), (16, 32), (0, 56)),
        ((3, 4), (0, 16), (0, 56)),
        ((3, 4), (16, 32), (0, 56)),
    )
    assert input_passes(schedule, kernel, CMP16) == 2
    assert input_passes(schedule, kernel, V100) == 1


def test_a_gpu_convolution_reads_its_input_once_per_swizzle_strip() -> None:
    """DenseNet-121's transition 3 backward-data has 1024 input channels: 8 N-tiles of 128, two
    strips of four, so its output gradient is read twice; 512 channels are one strip."""
    schedule = build_schedule(build_model("densenet121", batch=2, image=32), "baseline")
    wide = kernel_named(schedule, "features.transition3.conv.bwd_data")
    narrow = kernel_named(schedule, "features.transition3.conv.fwd")
    assert (wide.space[1].extent, input_passes(schedule, wide, V100)) == (1024, 2)
    assert (narrow.space[1].extent, input_passes(schedule, narrow, V100)) == (512, 1)
    assert split_work(schedule, wide, V100).dynamic
    assert not split_work(schedule, wide, CMP16).dynamic


def test_gpu_convolution_tiles_launch_in_strips_dealt_to_sms_in_turn() -> None:
    schedule = build_schedule(build_model("resnet50", batch=2, image=64), "baseline")
    kernel = kernel_named(schedule, "layer4.0.conv2.fwd")  # 512 out channels at 2×2: 4 N-tiles
    work = split_work(schedule, kernel, V100)
    boxes = [box for thread in work.threads for box in thread]
    # 2 images of 4 pixels: one M-tile of both images; 4 N-tiles of 128 channels, one per SM
    assert work.threads[:4] == tuple(
        (((0, 2), (start, start + 128), (0, 2)),) for start in (0, 128, 256, 384)
    )
    assert len(boxes) == 4
    assert work.launch_order() == tuple(boxes)  # one CTA per SM: the launch order itself


def test_gpu_m_tiles_are_equal_and_each_wave_reads_its_strips_weights() -> None:
    """ResNet-50's layer4.0.conv2 backward-data at batch 32: 14 × 14 input-gradient pixels per
    image, two M-tiles of 7 rows each (not 9 and 5), 4 N-tiles of 128 channels in one strip: 256
    CTAs on 80 SMs, 4 waves, each reading the strip's weights."""
    schedule = build_schedule(build_model("resnet50", batch=32), "baseline")
    kernel = kernel_named(schedule, "layer4.0.conv2.bwd_data")
    order = split_work(schedule, kernel, V100).launch_order()
    assert len(order) == 256
    assert {box[2] for box in order} == {(0, 7), (7, 14)}
    assert weight_passes(schedule, kernel, V100) == (4, 1)
    # MKL-DNN's direct convolution: at most 14 × 14 it walks channel blocks outermost, each
    # block's weights once; larger, image by image, every block's weights once per image
    assert weight_passes(schedule, kernel, CMP16) == (1, 1)
    larger = kernel_named(schedule, "layer2.1.conv2.fwd")  # 28 × 28
    assert weight_passes(schedule, larger, CMP16) == (32, 1)
    pointwise = kernel_named(schedule, "layer4.0.conv3.fwd")
    assert weight_passes(schedule, pointwise, CMP16) == (1, 1)


def test_stores_follow_the_library() -> None:
    schedule = build_schedule(build_model("densenet121", batch=2, image=32), "bnff")
    fused = next(
        kernel
        for kernel in schedule.kernels
        if kernel.main_op().kind is OpKind.CONV_FWD
        and kernel.ops[0].placement is Placement.PROLOGUE
        and kernel.name.endswith("conv1.fwd")
    )
    kinds = [store_kind(schedule, fused, index, CMP16) for index in range(len(fused.ops))]
    # 1×1 convolution: the normalized input is stored with ordinary stores, the output streams
    assert kinds[0] == FETCH
    assert kinds[fused.ops.index(fused.main_op())] == STREAM
    assert {store_kind(schedule, fused, index, V100) for index in range(len(fused.ops))} == {
        ALLOCATE
    }
    never = CMP16.with_overrides(["compute.nontemporal_stores=never"])
    assert store_kind(schedule, fused, 2, never) == FETCH


def test_a_gpu_prologue_runs_on_every_load_and_only_the_first_channel_tile_stores() -> None:
    """DenseNet-121's transition 2 on the V100 (bnff): 256 output channels are two 128-channel
    CTA tiles over the same pixels; both read and normalize their input (in registers, as
    CUTLASS's mainloop fusion does), and only the first stores the normalized, rectified input
    that backward needs: each of its 64 KiB once, not once per tile."""
    schedule = build_schedule(build_model("densenet121", batch=2, image=32), "bnff")
    index = [kernel.name for kernel in schedule.kernels].index("features.transition2.conv.fwd")
    trace = Trace(schedule, V100, SimOptions())
    boxes, _ = trace.boxes(index)
    streams = [
        {(kind, trace.sources[source].tensor): size for kind, source, _, size in box.streams}
        for box in boxes
    ]
    assert [stream.get((0, "act:features.denseblock2.cat")) for stream in streams] == [65536] * 2
    assert [stream.get((ALLOCATE, "act:features.transition2.relu")) for stream in streams] == [
        65536,
        None,
    ]
    # MKL-DNN normalizes at each thread's first touch: here 8 (image, row) items for 16 threads
    # make two groups of output channels (balance2D), each thread normalizing its own item
    cpu = Trace(schedule, CMP16, SimOptions())
    read = sum(
        size
        for box in cpu.boxes(index)[0]
        for kind, source, _, size in box.streams
        if (kind, cpu.sources[source].tensor) == (0, "act:features.denseblock2.cat")
    )
    assert read == 2 * 65536


def test_first_touch_splits_a_footprint_into_new_and_seen_parts() -> None:
    touched: list = []
    shape = (2, 32, 8, 8)
    new, seen = _first_touch({"n": (0, 1), "c": (0, 32), "h": (0, 5)}, shape, touched)
    assert (new, seen) == ([{"n": (0, 1), "c": (0, 32), "h": (0, 5)}], [])
    # the next row block overlaps rows 3..5 (a 3×3 halo)
    new, seen = _first_touch({"n": (0, 1), "c": (0, 32), "h": (3, 8)}, shape, touched)
    assert new == [{"n": (0, 1), "c": (0, 32), "h": (5, 8)}]
    assert seen == [{"n": (0, 1), "c": (0, 32), "h": (3, 5)}]


def test_a_stream_is_cut_into_equal_shares_at_line_boundaries() -> None:
    # two runs of 400 B, at 0 and at 1000: 800 B in three steps of about 267 B
    stream = (1, 7, ((0, 400, 1, 0, 1, 0), (1000, 400, 1, 0, 1, 0)), 800)
    cursor = [0, 0, 0, 0, 0]
    steps = []
    for step in range(1, 4):
        found: list = []
        stream_ranges(stream, cursor, 800 * step // 3, 64, found)
        assert all(kind == 1 and source == 7 for _, _, kind, source in found)
        steps.append([(start, stop) for start, stop, _, _ in found])
    # a cut inside a run moves up to the next 64 B line: 266 → 320, 1133 → 1152
    assert steps == [[(0, 320)], [(320, 400), (1000, 1152)], [(1152, 1400)]]


def test_strided_blocks_run_inner_index_fastest() -> None:
    # 2 outer × 3 inner runs of 64 B: inner stride 256, outer stride 4096
    stream = (0, 1, ((8192, 64, 3, 256, 2, 4096),), 384)
    found: list = []
    stream_ranges(stream, [0, 0, 0, 0, 0], 384, 64, found)
    starts = [start for start, _, _, _ in found]
    assert starts == [8192, 8448, 8704, 12288, 12544, 12800]
