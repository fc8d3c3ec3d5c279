"""Pooling and channel-rearranging ops in the executor (tiles over samples and channels):
pooling, concatenation, chunks and channel shuffle."""

from __future__ import annotations

import numpy as np

from bnsim.graph.layer import LayerKind
from bnsim.schedule import (
    Op,
    OpKind,
)
from bnsim.schedule.footprint import (
    Region,
)
from bnsim.verify import reference as ref
from bnsim.verify.run_state import Runner, RunState


def _pool_fwd(run: RunState, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    x = run.read(op.reads[0], region)
    kind = layer.layer_kind
    if kind is LayerKind.MAXPOOL:
        y, argmax = ref.maxpool2d_fwd(
            x,
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            ceil_mode=layer.ceil_mode,
        )
        run.write(op.writes[1], region, argmax)
    elif kind is LayerKind.AVGPOOL:
        y = ref.avgpool2d_fwd(
            x,
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            ceil_mode=layer.ceil_mode,
            count_include_pad=layer.count_include_pad,
        )
    elif kind is LayerKind.ADAPTIVE_AVGPOOL:
        y = ref.adaptive_avgpool2d_fwd(x, output_hw=layer.output_size)
    else:
        y = ref.global_avgpool_fwd(x)
    run.write(op.writes[0], region, y)


def _pool_bwd(run: RunState, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    n, _, h, w = run.shape(op.writes[0])
    out = run.schedule.network.out_shape(op.layer)
    dy = run.read(op.reads[0], region, (n, out.c, out.h, out.w))
    kind = layer.layer_kind
    if kind is LayerKind.MAXPOOL:
        argmax = run.read(op.reads[1], region)
        dx = ref.maxpool2d_bwd(
            dy,
            argmax,
            input_hw=(h, w),
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
        )
    elif kind is LayerKind.AVGPOOL:
        dx = ref.avgpool2d_bwd(
            dy,
            input_hw=(h, w),
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            ceil_mode=layer.ceil_mode,
            count_include_pad=layer.count_include_pad,
        )
    elif kind is LayerKind.ADAPTIVE_AVGPOOL:
        dx = ref.adaptive_avgpool2d_bwd(dy, input_hw=(h, w))
    else:
        dx = ref.global_avgpool_bwd(dy, input_hw=(h, w))
    run.write(op.writes[0], region, dx)


def _channel_slices(
    run: RunState, names: tuple[str, ...], region: Region
) -> list[tuple[str, Region, Region]]:
    """For each part of a concatenation: (name, region of the part, region of the whole)."""
    start, stop = region["c"]
    pieces, offset = [], 0
    for name in names:
        channels = run.shape(name)[1]
        low, high = max(start, offset), min(stop, offset + channels)
        if low < high:
            pieces.append(
                (name, {**region, "c": (low - offset, high - offset)}, {**region, "c": (low, high)})
            )
        offset += channels
    return pieces


def _concat_fwd(run: RunState, index: int, op: Op, region: Region) -> None:
    for name, part, whole in _channel_slices(run, op.reads, region):
        run.write(op.writes[0], whole, run.read(name, part))


def _concat_bwd(run: RunState, index: int, op: Op, region: Region) -> None:
    layer_inputs = run.layer(op).inputs
    shapes = [run.schedule.network.out_shape(source) for source in layer_inputs]
    written = dict(zip(op.attr("slices"), op.writes, strict=True))
    offset = 0
    start, stop = region["c"]
    for position, shape in enumerate(shapes):
        low, high = max(start, offset), min(stop, offset + shape.c)
        if position in written and low < high:
            value = run.read(op.reads[0], {**region, "c": (low, high)})
            run.write(written[position], {**region, "c": (low - offset, high - offset)}, value)
        offset += shape.c


def _chunk_fwd(run: RunState, index: int, op: Op, region: Region) -> None:
    offset = op.attr("channels")[0]
    start, stop = region["c"]
    run.write(
        op.writes[0],
        region,
        run.read(op.reads[0], {**region, "c": (start + offset, stop + offset)}),
    )


def _chunk_bwd(run: RunState, index: int, op: Op, region: Region) -> None:
    """The chunks' gradients where they cover the region; zero where none does."""
    start, stop = region["c"]
    total = np.zeros_like(run.read(op.writes[0], region))
    for name, (offset, end) in zip(op.reads, op.attr("channels"), strict=True):
        low, high = max(start, offset), min(stop, end)
        if low < high:
            part = run.read(name, {**region, "c": (low - offset, high - offset)})
            total[:, low - start : high - start] = part
    run.write(op.writes[0], region, total)


def _shuffle_fwd(run: RunState, index: int, op: Op, region: Region) -> None:
    x = run.read(op.reads[0], region)
    run.write(op.writes[0], region, ref.channel_shuffle(x, op.attr("groups")))


def _shuffle_bwd(run: RunState, index: int, op: Op, region: Region) -> None:
    dy = run.read(op.reads[0], region)
    run.write(op.writes[0], region, ref.channel_shuffle_bwd(dy, op.attr("groups")))


RUNNERS: dict[OpKind, Runner] = {
    OpKind.POOL_FWD: _pool_fwd,
    OpKind.POOL_BWD: _pool_bwd,
    OpKind.CONCAT_FWD: _concat_fwd,
    OpKind.CONCAT_BWD: _concat_bwd,
    OpKind.CHUNK_FWD: _chunk_fwd,
    OpKind.CHUNK_BWD: _chunk_bwd,
    OpKind.SHUFFLE_FWD: _shuffle_fwd,
    OpKind.SHUFFLE_BWD: _shuffle_bwd,
}
