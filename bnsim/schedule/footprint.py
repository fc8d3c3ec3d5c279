"""Which part of its input a tile of a kernel's main op reads (shared by both interpreters).

A tile is a box over the kernel's iteration space, {axis: (start, stop)}; its input footprint is the
region of the main op's input tensor it reads (for a convolution: the input rows under its output
rows, and the input channels of the groups its output channels belong to). Fused prologue ops run on
exactly this region, and the simulator will charge exactly these bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from bnsim.graph.layer import Conv2d
from bnsim.schedule import Kernel, Op, OpKind, Placement, Schedule

Region = dict[
    str, tuple[int, int]
]  # axis (n, c, h, e) → [start, stop); a missing axis means all of it


def conv_group_span(layer: Conv2d, in_channels: int, o0: int, o1: int) -> tuple[int, int]:
    """Groups [g0, g1) that output channels [o0, o1) belong to."""
    per_group_out = layer.out_channels // layer.groups
    return o0 // per_group_out, (o1 - 1) // per_group_out + 1


def conv_input_rows(layer: Conv2d, h0: int, h1: int) -> tuple[int, int]:
    """Input rows that output rows [h0, h1) read, unpadded coordinates (may reach into padding).

    >>> conv_input_rows(Conv2d(name="c", inputs=("x",), out_channels=1, kernel=3, padding=1), 0, 4)
    (-1, 5)
    """
    top = h0 * layer.stride[0] - layer.padding[0]
    bottom = (
        (h1 - 1) * layer.stride[0] - layer.padding[0] + layer.dilation[0] * (layer.kernel[0] - 1)
    )
    return top, bottom + 1


def conv_output_rows_touching(layer: Conv2d, h0: int, h1: int, out_rows: int) -> tuple[int, int]:
    """Output rows whose windows cover an input row in [h0, h1) (what backward-data reads of dy)."""
    stride, pad, reach = (
        layer.stride[0],
        layer.padding[0],
        layer.dilation[0] * (layer.kernel[0] - 1),
    )
    low = max(0, -(-(h0 + pad - reach) // stride))
    high = min(out_rows, (h1 - 1 + pad) // stride + 1)
    return low, high


def prologue_operand(kernel: Kernel, index: int) -> int:
    """Which main-op input the prologue op `kernel.ops[index]` (with what follows it) produces."""
    derived = set(kernel.ops[index].writes)
    for op in kernel.ops[index + 1 :]:
        if op.placement is Placement.MAIN:
            return next(i for i, name in enumerate(op.reads) if name in derived)
        if derived.intersection(op.reads):
            derived.update(op.writes)
    raise AssertionError(f"prologue op {index} of kernel {kernel.name} feeds no main-op input")


def input_footprint(schedule: Schedule, op: Op, tile: Region, operand: int = 0) -> Region:
    """The region of input `operand` of `op` that the tile reads (the tile, if element-wise)."""
    return footprint_rule(schedule, op, operand)(tile)


def footprint_rule(schedule: Schedule, op: Op, operand: int = 0) -> Callable[[Region], Region]:
    """`input_footprint` of one op and operand as a function of the tile.

    The layer's geometry is looked up once: the simulator calls the rule for every tile.
    """
    layer = schedule.network.layer(op.layer)
    if op.kind is OpKind.CONV_FWD and isinstance(layer, Conv2d):
        _, c, h, _ = schedule.tensor(op.reads[0]).shape
        per_group_in = c // layer.groups

        def conv_forward(tile: Region) -> Region:
            g0, g1 = conv_group_span(layer, c, *tile["c"])
            top, bottom = conv_input_rows(layer, *tile["h"])
            return {
                "n": tile["n"],
                "c": (g0 * per_group_in, g1 * per_group_in),
                "h": (max(top, 0), min(bottom, h)),
            }

        return conv_forward
    if op.kind is OpKind.CONV_BWD_DATA and isinstance(layer, Conv2d):
        c = schedule.tensor(op.writes[0]).shape[1]
        out_rows = schedule.tensor(op.reads[0]).shape[2]
        per_group_in, per_group_out = c // layer.groups, layer.out_channels // layer.groups

        def conv_backward_data(tile: Region) -> Region:
            c0, c1 = tile["c"]
            g0, g1 = c0 // per_group_in, (c1 - 1) // per_group_in + 1
            return {
                "n": tile["n"],
                "c": (g0 * per_group_out, g1 * per_group_out),
                "h": conv_output_rows_touching(layer, *tile["h"], out_rows),
            }

        return conv_backward_data
    if op.kind is OpKind.CONV_BWD_WEIGHT and isinstance(layer, Conv2d):
        if operand == 1:  # dy: the tile's own output channels and rows
            return lambda tile: {"n": tile["n"], "c": tile["c"], "h": tile["h"]}
        _, c, h, _ = schedule.tensor(op.reads[0]).shape
        per_group_in = c // layer.groups

        def conv_backward_weight(tile: Region) -> Region:
            g0, g1 = conv_group_span(layer, c, *tile["c"])
            top, bottom = conv_input_rows(layer, *tile["h"])
            return {
                "n": tile["n"],
                "c": (g0 * per_group_in, g1 * per_group_in),
                "h": (max(top, 0), min(bottom, h)),
            }

        return conv_backward_weight
    if op.kind in (
        OpKind.FC_FWD,
        OpKind.FC_BWD_DATA,
        OpKind.FC_BWD_WEIGHT,
        OpKind.POOL_FWD,
        OpKind.POOL_BWD,
    ):
        return lambda tile: {key: value for key, value in tile.items() if key != "h"}
    return _same


def _same(tile: Region) -> Region:
    return tile
