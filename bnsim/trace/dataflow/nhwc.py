"""How oneDNN v3 and PyTorch's ATen share a kernel's work among threads on channels-last (NHWC)
tensors, and in what order each thread walks its share.

PyTorch's channels_last memory format keeps each pixel's channels together; oneDNN's brgemm
convolutions take such activations as they are (no layout copies), and ATen's element-wise and
batch-normalization kernels walk them pixel by pixel. docs/model.md ("Channels-last kernels") cites
the source of each rule:

- convolutions, forward and backward-data (oneDNN's brgemm convolutions, `brg_conv_fwd`,
  `brgconv_1x1`, and `brg_conv_bwd` or `brgconv_strided` for the data gradient, which runs as a
  forward convolution of the output gradient into the input gradient): work items (image, output
  row, block of output channels), balance211 over threads in one of two loop orders: channel
  blocks innermost (`loop_ndhwgc`: each row's input is read by every block in turn, the weights
  cycle once per row) or rows innermost (`loop_ngcdhw`, when the input image is smaller than one
  output channel's weights: each block's weights serve the whole image, whose input is read once
  per block). An item reads the input rows its output rows need, every input channel, and its
  block's weights; its output is one run of the block's channels per pixel;
- weight gradients: oneDNN's `jit:avx512_core` and `jit_1x1` kernels, whose thread split for NHWC
  activations is the blocked layout's (bnsim.trace.dataflow.onednn);
- element-wise kernels, pooling and batch normalization: contiguous shares of the tensor's
  pixels (ATen's `parallel_for` over N·H·W rows of C channels, TensorIterator's 1-D loop over
  the tensor in memory order), every channel to each thread;
- concatenations and fully connected layers: oneDNN's blocked split (bnsim.trace.dataflow.onednn).

bnsim's kernel spaces have no column axis, so a share is whole rows, and a 1×1 convolution's pixel
blocks (oneDNN's `os_block`, a cost-model choice of about 200 pixels) are single rows.
"""

from __future__ import annotations

from bnsim.config.machine import Machine
from bnsim.graph.layer import Conv2d
from bnsim.schedule import Box, Kernel, OpKind, Schedule
from bnsim.trace.dataflow import CHANNEL_BLOCK, WorkSplit, balance211, blocks_of, linear_boxes

# kernels that keep oneDNN's blocked-layout split whatever the activations' layout
_BLOCKED_SPLIT = frozenset(
    (
        OpKind.CONV_BWD_WEIGHT,
        OpKind.FC_FWD,
        OpKind.FC_BWD_DATA,
        OpKind.FC_BWD_WEIGHT,
        OpKind.CONCAT_FWD,
        OpKind.CONCAT_BWD,
    )
)
_CONV_DATA = frozenset((OpKind.CONV_FWD, OpKind.CONV_BWD_DATA))


def split(schedule: Schedule, kernel: Kernel, machine: Machine) -> WorkSplit:
    """The split of `kernel` over the machine's cores, with channels-last activations."""
    from bnsim.trace.dataflow import onednn  # noqa: PLC0415

    main = kernel.main_op()
    threads = machine.cores.count
    names = tuple(axis.name for axis in kernel.space)
    if main.kind in _CONV_DATA and brgemm_layer(schedule, kernel):
        return _brgemm(schedule, kernel, machine)
    if main.kind in _BLOCKED_SPLIT or main.kind.is_matrix() or names != ("n", "c", "h"):
        return onednn.split(schedule, kernel, machine)
    return pixel_split(kernel, threads)


def channel_block(schedule: Schedule, kernel: Kernel) -> int:
    """Output channels of one work item (oneDNN's `oc_block`; of the input gradient's channels for
    the data gradient): 48 for a 1×1 convolution whose channels fill 48-channel blocks to at least
    95 %, else the largest of 64, 32 and 16 that divides them, 64 only below 192 channels for
    larger kernels, and 16 for a count no block divides."""
    layer = schedule.network.layer(kernel.main_op().layer)
    assert isinstance(layer, Conv2d)
    channels = kernel.space[1].extent
    pointwise = layer.kernel == (1, 1)
    if pointwise and channels / (blocks_of(channels, 48) * 48) >= 0.95:
        return 48
    for block in (64, 32):
        if channels % block == 0 and (pointwise or block < 64 or channels < 192):
            return block
    return CHANNEL_BLOCK


def channel_outer(schedule: Schedule, kernel: Kernel) -> bool:
    """`loop_ngcdhw` (channel blocks outside the rows) when an image's input is smaller than the
    weights (oneDNN compares ih·iw·ic with oc·kh·kw·ic), else `loop_ndhwgc` (blocks innermost)."""
    main = kernel.main_op()
    layer = schedule.network.layer(main.layer)
    assert isinstance(layer, Conv2d)
    source = schedule.tensor(main.reads[0]).shape  # the input, or the output gradient
    return source[2] * source[3] < kernel.space[1].extent * layer.kernel[0] * layer.kernel[1]


def input_passes(schedule: Schedule, kernel: Kernel) -> int:
    """Rows innermost: each block of output channels reads the image's input once."""
    if not channel_outer(schedule, kernel):
        return 1
    return blocks_of(kernel.space[1].extent, channel_block(schedule, kernel))


def weight_passes(schedule: Schedule, kernel: Kernel, cores: int) -> int:
    """Rows innermost: the weights once per image; blocks innermost: once per row. The cores
    walk their images through the same blocks at the same pace, so each pass serves one image
    (row) of every core: the passes one after the other are the images (rows) of one core."""
    n, _, h = (axis.extent for axis in kernel.space)
    images = -(-n // cores)
    return images if channel_outer(schedule, kernel) else images * h


def brgemm_layer(schedule: Schedule, kernel: Kernel) -> bool:
    """Whether the kernel's layer is a convolution oneDNN runs as a brgemm convolution (grouped
    ones it runs otherwise, and keep the blocked layout's split here)."""
    layer = schedule.network.layer(kernel.main_op().layer)
    return isinstance(layer, Conv2d) and layer.groups == 1


# the share of a core's private cache that data the library's loop re-reads may take for bnsim to
# step through the re-reading items as one box (their re-reads are then cache hits)
RESIDENT_SHARE = 0.5


def _brgemm(schedule: Schedule, kernel: Kernel, machine: Machine) -> WorkSplit:
    """(image, row, channel block) items, balance211 over threads in the loop order.

    A thread's consecutive items make one box where what they re-read of each other stays in the
    private cache: a row's input, which every block of the row reads in turn (blocks innermost),
    and with it the weights, which every row reads (blocks innermost), or the image's input,
    which every block reads (rows innermost). Those re-reads are cache hits, which bnsim does not
    step through one by one; where the data would not fit, each item is a box of its own."""
    main = kernel.main_op()
    layer = schedule.network.layer(main.layer)
    assert isinstance(layer, Conv2d)
    n, c, h = (axis.extent for axis in kernel.space)
    block = channel_block(schedule, kernel)
    outer = channel_outer(schedule, kernel)
    _, channels, rows, width = schedule.tensor(main.reads[0]).shape
    element = machine.dtype_bytes()
    resident = RESIDENT_SHARE * machine.private.size_bytes
    row_input = layer.kernel[0] * width * channels * element
    weights = schedule.tensor(main.reads[1]).num_elements() * element
    if outer:
        merge_blocks, merge_rows = rows * width * channels * element <= resident, True
    else:
        merge_blocks = row_input <= resident
        merge_rows = merge_blocks and row_input + weights <= resident
    blocks = blocks_of(c, block)
    order = ("n", "c", "h") if outer else ("n", "h", "c")
    counts = {"n": n, "c": blocks, "h": h}
    work: list[tuple[Box, ...]] = []
    threads = machine.cores.count
    for share in balance211(n * blocks * h, threads):
        thread: list[Box] = []
        for found in linear_boxes([counts[axis] for axis in order], share.start, share.stop):
            item = dict(zip(order, found, strict=True))
            first, last = item["c"]
            runs = [(first, last)] if merge_blocks else [(b, b + 1) for b in range(first, last)]
            spans = [item["h"]] if outer or merge_rows else [(r, r + 1) for r in range(*item["h"])]
            pairs = (
                [(run, span) for run in runs for span in spans]
                if outer
                else [(run, span) for span in spans for run in runs]
            )
            for image in range(*item["n"]):
                for (low, high), span in pairs:
                    box = ((image, image + 1), (low * block, min(high * block, c)), span)
                    _append(thread, box, merge_blocks, merge_rows)
        work.append(tuple(thread))
    assert len(work) == threads
    return WorkSplit(tuple(work))


def _append(thread: list[Box], box: Box, merge_blocks: bool, merge_rows: bool) -> None:
    """Add `box` to the thread's boxes, as part of the last one where it continues it."""
    if thread:
        image, channels, span = thread[-1]
        if image == box[0] and merge_blocks and span == box[2] and channels[1] == box[1][0]:
            thread[-1] = (image, (channels[0], box[1][1]), span)
            return
        if image == box[0] and merge_rows and channels == box[1] and span[1] == box[2][0]:
            thread[-1] = (image, channels, (span[0], box[2][1]))
            return
    thread.append(box)


def pixel_split(kernel: Kernel, threads: int) -> WorkSplit:
    """Contiguous shares of the (image, row) pairs, every channel to each thread: an NHWC tensor
    in memory order, as ATen's channels-last kernels walk it."""
    n, c, h = (axis.extent for axis in kernel.space)
    boxes: list[tuple[Box, ...]] = []
    for share in balance211(n * h, threads):
        boxes.append(
            tuple(
                (images, (0, c), rows)
                for images, rows in linear_boxes((n, h), share.start, share.stop)
            )
        )
    return WorkSplit(tuple(boxes))
