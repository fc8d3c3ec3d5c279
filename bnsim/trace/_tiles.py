# cython: annotation_typing=False
"""The inner loop of bnsim.trace: a thread's work items as timed steps of work and byte ranges.

Plain Python that `pip install` also compiles with Cython when it can; the compiled module then
shadows this file (same results, tested against this source). Only the per-item arithmetic lives
here: what each op reads and writes is decided once per kernel, in bnsim.trace.

A thread walks its boxes (work items) in order. Each box's accesses are streams: per tensor an op
touches, the byte ranges of its region in address order. A box is simulated in steps: step k of S
issues the k-th S-th of every stream (cut at line boundaries), so that all of a box's streams
advance together over its duration, as the loops of the real kernel interleave them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

CHANNEL_BLOCK = 16  # nChw16c
# how a 4-D tensor's elements lie in memory (a Layout's last field)
PLAIN = 0  # nchw, and every tensor that is not a 4-D activation
BLOCKED = 1  # nChw16c: 16-channel blocks (channels padded to 16), each block's pixels contiguous
CHANNELS_LAST = 2  # nhwc: each pixel's channels contiguous

Region = dict[str, Any]  # axis → [start, stop) (plus "samples"/"cols" for sampled statistics)
Layout = tuple[int, int, tuple[int, ...], int]  # base address, element bytes, shape, order
# start, stop, kind (0 a load; a store: 1 read for ownership, 2 non-temporal, 3 allocate), source
Range = tuple[int, int, int, int]
# runs at first + outer·outer stride + inner·inner stride, of one length, inner index fastest
Block = tuple[int, int, int, int, int, int]
Stream = tuple[int, int, tuple[Block, ...], int]  # kind, source, blocks, bytes
Box4 = tuple[int, int, int, int, int, int]  # n0, n1, c0, c1, h0, h1 of a 4-D tensor region


def thread_boxes(
    boxes: Sequence[tuple[tuple[int, int], ...]],
    names: Sequence[str],
    volume: int,
    plan: Sequence[Any],
    footprint: Callable[[Region, int], Region],
    step_bytes: int,
    min_steps: int,
    make_box: Callable[[float, int, int, tuple[Stream, ...]], Any],
    out: list[Any],
) -> None:
    """Append to `out` the work of one thread's boxes, in its order: `make_box(compute cycles,
    flops, steps, streams)` per box.

    `plan` holds one tuple per op (bnsim.trace._Step): its cycles and FLOPs for the whole kernel,
    the main-op operand it produces if it is a prologue op, the shape of its first input, its
    elements per load if its work follows the footprint (recomputed on every load), its accesses,
    each a tuple (region rule (tile, op region) → tensor region or None for the op's region, the
    tensor's layout, access kind, source id), the axis whose first boxes alone store the op's
    outputs (or -1: every box), and for the main op the stored
    prologue outputs it re-reads where an earlier box of the thread produced them, each a tuple
    (operand, layout, source id). `footprint(tile, operand)` is the region of a main-op operand
    that a tile reads. A prologue that is not recomputed on every load works on the part of the
    footprint the thread has not touched before (its first touch); the main op re-reads the rest.
    A box takes at least `min_steps` steps and as many as its streams need for no step to move
    more than `step_bytes`.
    """
    touched: dict[int, list[Box4]] = {}  # per operand: disjoint boxes the thread touched already
    for box in boxes:
        tile = dict(zip(names, box, strict=True))
        elements = 1
        for start, stop in box:
            elements *= stop - start
        share = elements / volume
        cycles = 0.0
        flops = 0.0
        streams: list[Stream] = []
        firsts: dict[int, tuple[list[Region], list[Region]]] = {}  # operand → (new, seen before)
        for (
            step_cycles,
            step_flops,
            operand,
            shape,
            per_load_elements,
            accesses,
            rereads,
            store_axis,
        ) in plan:
            regions: list[Region]
            if operand is None:
                regions = [tile]
                work = share
            elif per_load_elements:
                regions = [footprint(tile, operand)]
                work = region_volume(regions[0], shape) / per_load_elements
            else:
                known = firsts.get(operand)
                if known is None:
                    known = firsts[operand] = _first_touch(
                        footprint(tile, operand), shape, touched.setdefault(operand, [])
                    )
                regions = known[0]
                whole = math.prod(shape)
                work = sum(region_volume(region, shape) for region in regions) / whole
            cycles += step_cycles * work
            flops += step_flops * work
            stores = store_axis < 0 or box[store_axis][0] == 0
            for rule, layout, kind, source in accesses:
                if kind and not stores:
                    continue
                blocks: list[Block] = []
                for region in regions:
                    _append_blocks(blocks, layout, region if rule is None else rule(tile, region))
                _add_stream(streams, blocks, kind, source)
            for reread_operand, layout, source in rereads:
                seen = firsts.get(reread_operand)
                if seen is not None:
                    blocks = []
                    for region in seen[1]:
                        _append_blocks(blocks, layout, region)
                    _add_stream(streams, blocks, 0, source)
        total = 0
        for stream in streams:
            total += stream[3]
        steps = max(min_steps, -(-total // step_bytes), 1)
        out.append(make_box(cycles, round(flops), steps, tuple(streams)))


def _add_stream(streams: list[Stream], blocks: list[Block], kind: int, source: int) -> None:
    if len(blocks) == 1:  # most streams
        block = blocks[0]
        total = block[1] * block[2] * block[4]
        if total:
            streams.append((kind, source, (block,), total))
        return
    total = 0
    for block in blocks:
        total += block[1] * block[2] * block[4]
    if total:
        blocks = [block for block in blocks if block[1] * block[2] * block[4]]
        streams.append((kind, source, tuple(blocks), total))


def stream_ranges(
    stream: Stream, cursor: list[int], target: int, line: int, out: list[Range]
) -> None:
    """Advance a stream's cursor to `target` bytes taken, appending the (start, stop, kind,
    source) ranges passed over to `out`; a cut inside a run moves up to a line boundary.

    The cursor is [block index, outer index, inner index, offset in the run, bytes taken]; it
    starts at zeros. The compiled memory model (FastMemorySystem.run_kernel) cuts streams the same
    way.
    """
    kind, source, blocks, _ = stream
    index, outer, inner, offset, taken = cursor
    while taken < target:
        first, length, inner_count, inner_stride, outer_count, outer_stride = blocks[index]
        start = first + outer * outer_stride + inner * inner_stride
        low = start + offset
        high = low + (target - taken)
        stop = start + length
        high = min(stop, -(-high // line) * line) if high < stop else stop
        if high > low:
            out.append((low, high, kind, source))
        taken += high - low
        offset = high - start
        if offset == length:
            offset = 0
            inner += 1
            if inner == inner_count:
                inner = 0
                outer += 1
                if outer == outer_count:
                    outer = 0
                    index += 1
    cursor[0], cursor[1], cursor[2], cursor[3], cursor[4] = index, outer, inner, offset, taken


def _first_touch(
    region: Region, shape: tuple[int, ...], touched: list[Box4]
) -> tuple[list[Region], list[Region]]:
    """Split a 4-D footprint into the parts a thread touches for the first time and those it
    touched before (both lists of disjoint regions); records the new parts in `touched`."""
    box = _as_box(region, shape)
    fresh = [box]
    seen: list[Region] = []
    for old in touched:
        overlap = _intersect(box, old)
        if overlap is not None:
            seen.append(_as_region(overlap))
            fresh = [part for piece in fresh for part in _subtract(piece, old)]
    touched.extend(fresh)
    return [_as_region(piece) for piece in fresh], seen


def _as_box(region: Region, shape: tuple[int, ...]) -> Box4:
    n0, n1 = region.get("n") or (0, shape[0])
    c0, c1 = region.get("c") or (0, shape[1])
    h0, h1 = region.get("h") or (0, shape[2])
    return (n0, n1, c0, c1, h0, h1)


def _as_region(box: Box4) -> Region:
    return {"n": (box[0], box[1]), "c": (box[2], box[3]), "h": (box[4], box[5])}


def _intersect(a: Box4, b: Box4) -> Box4 | None:
    n0, n1 = max(a[0], b[0]), min(a[1], b[1])
    c0, c1 = max(a[2], b[2]), min(a[3], b[3])
    h0, h1 = max(a[4], b[4]), min(a[5], b[5])
    if n0 >= n1 or c0 >= c1 or h0 >= h1:
        return None
    return (n0, n1, c0, c1, h0, h1)


def _subtract(a: Box4, b: Box4) -> list[Box4]:
    """a − b as disjoint boxes: slabs of a below and above b, axis by axis."""
    if _intersect(a, b) is None:
        return [a]
    parts = []
    n0, n1, c0, c1, h0, h1 = a
    if n0 < b[0]:
        parts.append((n0, b[0], c0, c1, h0, h1))
    if b[1] < n1:
        parts.append((b[1], n1, c0, c1, h0, h1))
    n0, n1 = max(n0, b[0]), min(n1, b[1])
    if c0 < b[2]:
        parts.append((n0, n1, c0, b[2], h0, h1))
    if b[3] < c1:
        parts.append((n0, n1, b[3], c1, h0, h1))
    c0, c1 = max(c0, b[2]), min(c1, b[3])
    if h0 < b[4]:
        parts.append((n0, n1, c0, c1, h0, b[4]))
    if b[5] < h1:
        parts.append((n0, n1, c0, c1, b[5], h1))
    return parts


def region_volume(region: Region, shape: tuple[int, ...]) -> int:
    """Elements of a 4-D (n, c, h, w) region; a missing axis means all of it."""
    axes = ("n", "c", "h", "w")
    return math.prod(
        (region[axis][1] - region[axis][0]) if axis in region else extent
        for axis, extent in zip(axes, shape, strict=False)
    )


def runs(layout: Layout, region: Region) -> list[tuple[int, int]]:
    """Byte ranges [start, stop) of a region of a tensor, merged where contiguous.

    4-D tensors take n, c, h bounds (for weights, n bounds the output channels); flat tensors take
    e bounds; 1-D tensors c (channels) or n (samples) bounds; 2-D tensors n (row) bounds, or
    `columns` bounds (a column block: one range per row).
    """
    blocks: list[Block] = []
    _append_blocks(blocks, layout, region)
    found = []
    for first, length, inner_count, inner_stride, outer_count, outer_stride in blocks:
        for outer in range(outer_count):
            for inner in range(inner_count):
                start = first + outer * outer_stride + inner * inner_stride
                found.append((start, start + length))
    return found


def _append_blocks(out: list[Block], layout: Layout, region: Region) -> None:
    """Append the region's byte ranges as blocks of strided runs (first address, run length, inner
    count, inner stride, outer count, outer stride), in address order within each block."""
    base, size, shape, order = layout
    if "e" in region:
        start, stop = region["e"]
        if start < stop:
            out.append((base + start * size, (stop - start) * size, 1, 0, 1, 0))
    elif len(shape) == 4:
        if order == CHANNELS_LAST:
            _append_blocks_nhwc(out, shape, region, base, size)
        else:
            _append_blocks_4d(out, shape, region, base, size, order == BLOCKED)
    elif "columns" in region and len(shape) == 2:
        low, high = region["columns"]
        row_bytes = shape[1] * size
        if low < high:
            out.append((base + low * size, (high - low) * size, shape[0], row_bytes, 1, 0))
    else:
        rows = region.get("c") or region.get("n") or (0, shape[0])
        row_bytes = math.prod(shape[1:]) * size
        if rows[0] < rows[1]:
            out.append((base + rows[0] * row_bytes, (rows[1] - rows[0]) * row_bytes, 1, 0, 1, 0))


def _append_blocks_4d(
    out: list[Block],
    shape: tuple[int, ...],
    region: Region,
    base: int,
    size: int,
    blocked: bool,
) -> None:
    n, c, h, w = shape
    n0, n1 = region.get("n") or (0, n)
    c0, c1 = region.get("c") or (0, c)
    h0, h1 = region.get("h") or (0, h)
    if n0 >= n1 or c0 >= c1 or h0 >= h1:
        return
    if blocked:
        c0, c1, c = c0 // CHANNEL_BLOCK, -(-c1 // CHANNEL_BLOCK), -(-c // CHANNEL_BLOCK)
        unit = CHANNEL_BLOCK * size  # bytes of one pixel of one channel block
    else:
        unit = size  # bytes of one pixel of one channel
    row = w * unit
    plane = h * row
    sample = c * plane
    if "samples" in region:  # sampled statistics: selected samples, maybe a patch of columns
        col0, col1 = region["cols"]
        for index in region["samples"]:
            first = base + index * sample + c0 * plane
            if col0 == 0 and col1 == w:  # whole rows: one run per channel (block)
                out.append((first + h0 * row, (h1 - h0) * row, c1 - c0, plane, 1, 0))
            else:
                first += h0 * row + col0 * unit
                out.append((first, (col1 - col0) * unit, h1 - h0, row, c1 - c0, plane))
    elif h0 == 0 and h1 == h:
        if c0 == 0 and c1 == c:
            out.append((base + n0 * sample, (n1 - n0) * sample, 1, 0, 1, 0))
        else:
            out.append((base + n0 * sample + c0 * plane, (c1 - c0) * plane, n1 - n0, sample, 1, 0))
    else:
        first = base + n0 * sample + c0 * plane + h0 * row
        out.append((first, (h1 - h0) * row, c1 - c0, plane, n1 - n0, sample))


def _append_blocks_nhwc(
    out: list[Block], shape: tuple[int, ...], region: Region, base: int, size: int
) -> None:
    n, c, h, w = shape
    n0, n1 = region.get("n") or (0, n)
    c0, c1 = region.get("c") or (0, c)
    h0, h1 = region.get("h") or (0, h)
    if n0 >= n1 or c0 >= c1 or h0 >= h1:
        return
    pixel = c * size
    row = w * pixel
    sample = h * row
    run = (c1 - c0) * size  # one pixel's channels of the region
    whole_pixels = c0 == 0 and c1 == c
    if "samples" in region:  # sampled statistics: selected samples, maybe a patch of columns
        col0, col1 = region["cols"]
        for index in region["samples"]:
            first = base + index * sample + h0 * row + col0 * pixel + c0 * size
            if whole_pixels and col0 == 0 and col1 == w:
                out.append((first, (h1 - h0) * row, 1, 0, 1, 0))
            elif whole_pixels:
                out.append((first, (col1 - col0) * pixel, h1 - h0, row, 1, 0))
            else:
                out.append((first, run, col1 - col0, pixel, h1 - h0, row))
    elif not whole_pixels:
        first = base + n0 * sample + h0 * row + c0 * size
        out.append((first, run, (h1 - h0) * w, pixel, n1 - n0, sample))
    elif h0 == 0 and h1 == h:
        out.append((base + n0 * sample, (n1 - n0) * sample, 1, 0, 1, 0))
    else:
        out.append((base + n0 * sample + h0 * row, (h1 - h0) * row, n1 - n0, sample, 1, 0))
