"""MKL-DNN's AVX-512 work split, as the BNFF kernels ran it (v0.11, as Jung et al. forked it).

Each rule follows the library's public source (docs/model.md, "Kernel dataflow", cites file and
function for each):

- 1×1 convolutions (forward, backward-data): work items are (image, pixel block); balance211 gives
  each thread a contiguous run of them and every output channel (`load_grp_count` is 1 whenever
  there are at least as many items as threads, else the channels are shared by groups of threads).
  A thread walks its items in order; per item it reads the item's input once (the library sizes an
  item to stay in the L2 cache while the output-channel blocks re-read it) and the weights of its
  channels once.
- other convolutions (the direct driver): work items are (image, 16-channel output block, output
  row), in the order image, block, row (`loop_gnc`) or block, image, row (`loop_cgn`, when both
  output dimensions are at most 14); a kernel that normalizes its input on first touch keeps
  `loop_gnc`, as the BNFF fork does, so that one thread owns an image's every channel block.
- weight gradients: threads split (images × output-channel blocks) by the library's memory-cost
  search; images split across threads keep private partial sums, combined at the end.
- batch normalization: channel blocks, then images, over threads (`thread_balance`).
- element-wise kernels: contiguous shares of the tensor in memory order; concatenations: whole
  (image, input) copies; fully connected layers: blocks of output (for the data gradient, input)
  features, as a GEMM shares its columns.

bnsim's kernel spaces have no input-channel axis, so no split over input channels (the library's
`nthr_ic_b`) is modelled, and pixel blocks are whole output rows.
"""

from __future__ import annotations

import math

from bnsim.config.machine import Machine
from bnsim.graph.layer import Conv2d
from bnsim.schedule import Box, Kernel, OpKind, Placement, Schedule
from bnsim.trace.dataflow import (
    CHANNEL_BLOCK,
    FETCH,
    STREAM,
    WorkSplit,
    balance211,
    blocks_of,
    linear_boxes,
    memory_order_split,
)

SMALL_SPATIAL = 14  # pick_loop_order: loop_cgn when both output dimensions are at most this
# the memory-cost weights of the weight-gradient thread split: (source, output gradient, weights)
DIRECT_COST_WEIGHTS = (1, 1, 8)
POINTWISE_COST_WEIGHTS = (1, 1, 12)


def split(schedule: Schedule, kernel: Kernel, machine: Machine) -> WorkSplit:
    """MKL-DNN's split of `kernel` over the machine's cores."""
    main = kernel.main_op()
    threads = machine.cores.count
    kind = main.kind
    layer = schedule.network.layer(main.layer)
    if kind in (OpKind.CONV_FWD, OpKind.CONV_BWD_DATA) and isinstance(layer, Conv2d):
        if layer.kernel == (1, 1) and layer.groups == 1:
            return _pointwise(kernel, threads)
        return _direct(kernel, threads, channel_outer=channel_outer(schedule, kernel))
    if kind in (OpKind.CONV_BWD_WEIGHT, OpKind.FC_BWD_WEIGHT):
        pointwise = _pointwise_layer(layer)
        weights = POINTWISE_COST_WEIGHTS if pointwise else DIRECT_COST_WEIGHTS
        return _weight_gradient(schedule, kernel, threads, weights, rows=pointwise)
    if kind in (OpKind.BN_STATS, OpKind.BN_APPLY, OpKind.BN_GRAD_REDUCE, OpKind.BN_GRAD_APPLY):
        return _batch_norm(kernel, threads)
    if kind in (OpKind.FC_FWD, OpKind.FC_BWD_DATA):
        return _columns(kernel, threads)
    if kind in (OpKind.CONCAT_FWD, OpKind.CONCAT_BWD):
        return _concat(schedule, kernel, threads)
    return memory_order_split(kernel, threads, {"c": CHANNEL_BLOCK})


def channel_outer(schedule: Schedule, kernel: Kernel) -> bool:
    """`loop_cgn` (channel blocks outermost) when both spatial dimensions are at most 14, unless
    the kernel normalizes its input on first touch (the BNFF fork forces `loop_gnc`)."""
    first_touch = any(
        op.placement is Placement.PROLOGUE and not op.attr("per_load") for op in kernel.ops
    )
    small = max(kernel.space[2].extent, _width(schedule, kernel)) <= SMALL_SPATIAL
    return small and not first_touch


def input_passes(schedule: Schedule, kernel: Kernel) -> int:
    """Direct convolutions: one pass over the input per 16-channel block of the kernel's c axis."""
    ops = kernel.ops
    main = ops[0] if len(ops) == 1 else kernel.main_op()
    if main.kind not in _CONV_DATA:
        return 1
    layer = schedule.network.layer(main.layer)
    if isinstance(layer, Conv2d) and not _pointwise_layer(layer):
        return blocks_of(kernel.space[1].extent, CHANNEL_BLOCK)
    return 1


def weight_passes(schedule: Schedule, kernel: Kernel) -> int:
    """Direct convolutions in image-major order: one pass over the weights per image (each box
    is one image's 16-channel block and reads that block's weights)."""
    main = kernel.main_op()
    layer = schedule.network.layer(main.layer)
    if main.kind not in _CONV_DATA or not isinstance(layer, Conv2d) or _pointwise_layer(layer):
        return 1
    return 1 if channel_outer(schedule, kernel) else kernel.space[0].extent


def kernel_store_kinds(schedule: Schedule, kernel: Kernel) -> list[int]:
    """`store_kind` of each op of `kernel`."""
    main = kernel.main_op()
    if main.kind in _STREAMING_MAIN:
        return [STREAM] * len(kernel.ops)
    if main.kind in _CONV_DATA and _pointwise_layer(schedule.network.layer(main.layer)):
        return [FETCH if op.placement is Placement.PROLOGUE else STREAM for op in kernel.ops]
    return [FETCH] * len(kernel.ops)


_STREAMING_MAIN = frozenset((OpKind.BN_APPLY, OpKind.BN_GRAD_APPLY))
_CONV_DATA = frozenset((OpKind.CONV_FWD, OpKind.CONV_BWD_DATA))


def store_kind(schedule: Schedule, kernel: Kernel, op_index: int) -> int:
    """MKL-DNN's stores: non-temporal (`vmovntps`) for the output of a 1×1 convolution (forward and
    backward-data, `use_vmovntps`; the BNFF fork keeps it, and stores its fused backward-data
    output that way too) and of batch normalization's normalize and backward-data passes
    (`forward_channels`, `backward`); ordinary stores elsewhere, including the BNFF prologue that
    writes the normalized input back into the convolution's input buffer (`vmovups`)."""
    main = kernel.main_op()
    op = kernel.ops[op_index]
    if main.kind in (OpKind.BN_APPLY, OpKind.BN_GRAD_APPLY):
        return STREAM
    layer = schedule.network.layer(main.layer)
    pointwise_conv = main.kind in (OpKind.CONV_FWD, OpKind.CONV_BWD_DATA) and _pointwise_layer(
        layer
    )
    if pointwise_conv and op.placement is not Placement.PROLOGUE:
        return STREAM
    return FETCH


def _pointwise_layer(layer: object) -> bool:
    return isinstance(layer, Conv2d) and layer.kernel == (1, 1) and layer.groups == 1


def _width(schedule: Schedule, kernel: Kernel) -> int:
    """Columns of the kernel's rows: the output's (forward) or the input gradient's (backward)."""
    return schedule.tensor(kernel.main_op().writes[0]).shape[3]


def _pointwise(kernel: Kernel, threads: int) -> WorkSplit:
    """1×1 driver (balance2D): (image, row) items over threads, all channels to each."""
    n, c, h = (axis.extent for axis in kernel.space)
    channel_blocks = blocks_of(c, CHANNEL_BLOCK)
    items = n * h
    groups = 1 if items >= threads else min(channel_blocks, -(-threads // items))
    boxes: list[tuple[Box, ...]] = []
    group_threads = balance211(threads, groups)
    for group, members in zip(balance211(channel_blocks, groups), group_threads, strict=True):
        channels = (group.start * CHANNEL_BLOCK, min(group.stop * CHANNEL_BLOCK, c))
        for share in balance211(items, len(members)):
            boxes.append(
                tuple(
                    ((n0, n1), channels, (h0, h1))
                    for (n0, n1), (h0, h1) in linear_boxes((n, h), share.start, share.stop)
                )
            )
    return _work(boxes)


def _direct(kernel: Kernel, threads: int, *, channel_outer: bool) -> WorkSplit:
    """Direct driver: (image, 16-channel block, row) items, balance211 over threads.

    A box keeps to one channel block (and, in image-major order, one image): the driver loops
    over all input channels for every output-channel block (`nb_oc_blocking` is 1 on AVX-512
    FMA), so each block re-reads the image's input, which the next box's streams must show."""
    n, c, h = (axis.extent for axis in kernel.space)
    blocks = blocks_of(c, CHANNEL_BLOCK)
    order = ("c", "n", "h") if channel_outer else ("n", "c", "h")
    counts = {"n": n, "c": blocks, "h": h}
    boxes = []
    for share in balance211(n * blocks * h, threads):
        thread: list[Box] = []
        for found in linear_boxes([counts[a] for a in order], share.start, share.stop):
            box = dict(zip(order, found, strict=True))
            # block-major: one block's images together; image-major: each image's blocks in turn
            images = [box["n"]] if channel_outer else [(i, i + 1) for i in range(*box["n"])]
            for image in images:
                for block in range(*box["c"]):
                    channels = (block * CHANNEL_BLOCK, min((block + 1) * CHANNEL_BLOCK, c))
                    thread.append((image, channels, box["h"]))
        boxes.append(tuple(thread))
    return _work(boxes)


def _weight_gradient(
    schedule: Schedule, kernel: Kernel, threads: int, weights: tuple[int, int, int], *, rows: bool
) -> WorkSplit:
    """Threads split (reduction items × output-channel blocks) to minimise the library's memory
    cost: what each thread reads of the source and the output gradient, and the weights it
    writes. Reduction items are images, or (image, row) pairs for 1×1 convolutions (`rows`)."""
    main = kernel.main_op()
    extents = [axis.extent for axis in kernel.space]
    c, n = extents[0], extents[1]
    h = extents[2] if len(extents) > 2 else 1
    items, per_item = (n * h, 1) if rows else (n, h)
    source, gradient = (schedule.tensor(name).shape for name in main.reads[:2])
    source_item = math.prod(source[1:]) // per_item if rows else math.prod(source[1:])
    gradient_item = (math.prod(gradient[2:]) if len(gradient) == 4 else 1) // (h if rows else 1)
    per_output_weights = schedule.tensor(main.writes[0]).num_elements() // c
    blocks = blocks_of(c, CHANNEL_BLOCK)
    source_coef, gradient_coef, weight_coef = weights
    best: tuple[float, int, int] | None = None
    for by_items in range(1, min(threads, items) + 1):
        for by_channels in range(1, min(threads // by_items, blocks) + 1):
            per_thread, channel_blocks = -(-items // by_items), -(-blocks // by_channels)
            cost = (
                source_coef * per_thread * source_item
                + gradient_coef * per_thread * channel_blocks * CHANNEL_BLOCK * gradient_item
                + weight_coef * channel_blocks * CHANNEL_BLOCK * per_output_weights
            )
            if best is None or cost <= best[0]:
                best = (cost, by_items, by_channels)
    assert best is not None
    _, by_items, by_channels = best
    boxes: list[tuple[Box, ...]] = []
    for share in balance211(items, by_items):
        for block_share in balance211(blocks, by_channels):
            if not share or not block_share:
                boxes.append(())
                continue
            channel_range = (
                block_share.start * CHANNEL_BLOCK,
                min(block_share.stop * CHANNEL_BLOCK, c),
            )
            if len(extents) == 2:
                boxes.append(((channel_range, (share.start, share.stop)),))
            elif rows:
                boxes.append(
                    tuple(
                        (channel_range, images, lines)
                        for images, lines in linear_boxes((n, h), share.start, share.stop)
                    )
                )
            else:
                boxes.append(((channel_range, (share.start, share.stop), (0, h)),))
    boxes += [()] * (threads - len(boxes))
    return _work(boxes)


def _batch_norm(kernel: Kernel, threads: int) -> WorkSplit:
    """`thread_balance`: channel blocks over threads; with more threads than blocks, groups of
    threads share a block range and split the images."""
    n, c, h = (axis.extent for axis in kernel.space)
    blocks = blocks_of(c, CHANNEL_BLOCK)
    if threads <= blocks:
        channel_threads, image_threads = threads, 1
    else:
        channel_threads = math.gcd(threads, blocks)
        image_threads = min(n, threads // channel_threads)
    boxes: list[tuple[Box, ...]] = []
    for channels in balance211(blocks, channel_threads):
        for images in balance211(n, image_threads):
            if images and channels:
                channel_range = (
                    channels.start * CHANNEL_BLOCK,
                    min(channels.stop * CHANNEL_BLOCK, c),
                )
                boxes.append((((images.start, images.stop), channel_range, (0, h)),))
            else:
                boxes.append(())
    boxes += [()] * (threads - len(boxes))
    return _work(boxes)


def _columns(kernel: Kernel, threads: int) -> WorkSplit:
    """Fully connected: blocks of the feature axis over threads, every sample to each."""
    n, c = (axis.extent for axis in kernel.space)
    boxes = tuple(
        (
            (((0, n), (share.start * CHANNEL_BLOCK, min(share.stop * CHANNEL_BLOCK, c))),)
            if share
            else ()
        )
        for share in balance211(blocks_of(c, CHANNEL_BLOCK), threads)
    )
    return _work(list(boxes))


def _concat(schedule: Schedule, kernel: Kernel, threads: int) -> WorkSplit:
    """(image, input) copies, balance211 over threads; runs of one image merge into one box."""
    main = kernel.main_op()
    layer = schedule.network.layer(main.layer)
    widths = [schedule.network.out_shape(source).c for source in layer.inputs]
    offsets = [sum(widths[:index]) for index in range(len(widths) + 1)]
    n = kernel.space[0].extent
    boxes: list[tuple[Box, ...]] = []
    for share in balance211(n * len(widths), threads):
        thread: list[Box] = []
        for item in share:
            image, part = divmod(item, len(widths))
            channels = (offsets[part], offsets[part + 1])
            if thread and thread[-1][0] == (image, image + 1) and thread[-1][1][1] == channels[0]:
                thread[-1] = ((image, image + 1), (thread[-1][1][0], channels[1]))
            else:
                thread.append(((image, image + 1), channels))
        boxes.append(tuple(thread))
    return _work(boxes)


def _work(boxes: list[tuple[Box, ...]] | tuple[tuple[Box, ...], ...]) -> WorkSplit:
    return WorkSplit(tuple(tuple(thread) for thread in boxes))
