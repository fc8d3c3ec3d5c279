# cython: annotation_typing=False
"""The inner loop of bnsim.trace: each tile's work and byte ranges, for every tile of a kernel.

Plain Python that `pip install` also compiles with Cython when it can; the compiled module then
shadows this file (same results, tested against this source). Only the per-tile arithmetic lives
here: what each op reads and writes is decided once per kernel, in bnsim.trace. Imports nothing
from bnsim.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

CHANNEL_BLOCK = 16  # nChw16c

Region = dict[str, Any]  # axis → [start, stop) (plus "samples"/"cols" for sampled statistics)
Layout = tuple[int, int, tuple[int, ...], bool]  # base address, element bytes, shape, blocked
Range = tuple[int, int, bool, int]  # start, stop, is_write, source id


def kernel_tiles(
    boxes: Sequence[tuple[tuple[int, int], ...]],
    names: Sequence[str],
    volume: int,
    plan: Sequence[Any],
    footprint: Callable[[Region, int], Region],
    make_tile: Callable[[float, int, tuple[Range, ...]], Any],
) -> list[Any]:
    """Every tile of a kernel: `make_tile(compute cycles, flops, accesses)` per box, in order.

    `plan` holds one tuple per op (bnsim.trace._Step): its cycles and FLOPs for the whole kernel,
    the main-op operand it produces if it is a prologue op, the shape of its first input, its
    elements per load if its work follows the footprint, and its accesses, each a tuple (region
    rule (tile, op region) → tensor region or None for the op's region, the tensor's layout, is
    write, source id). `footprint(tile, operand)` is the region of a main-op operand that a tile
    reads.
    """
    tiles = []
    for box in boxes:
        tile = dict(zip(names, box, strict=True))
        elements = 1
        for start, stop in box:
            elements *= stop - start
        share = elements / volume
        footprints: dict[int, Region] = {}
        accesses: list[Range] = []
        cycles = 0.0
        flops = 0
        for step_cycles, step_flops, operand, shape, per_load_elements, step_accesses in plan:
            region = tile
            if operand is not None:
                known = footprints.get(operand)
                region = footprint(tile, operand) if known is None else known
                footprints[operand] = region
            work = share
            if per_load_elements:
                work = region_volume(region, shape) / per_load_elements
            cycles += step_cycles * work
            flops += round(step_flops * work)
            for rule, layout, write, source in step_accesses:
                _append_runs(
                    accesses,
                    layout,
                    region if rule is None else rule(tile, region),
                    write,
                    source,
                )
        tiles.append(make_tile(cycles, flops, tuple(accesses)))
    return tiles


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
    found: list[Range] = []
    _append_runs(found, layout, region, False, 0)
    return [(start, stop) for start, stop, _, _ in found]


def _append_runs(
    out: list[Range], layout: Layout, region: Region, write: bool, source: int
) -> None:
    base, size, shape, blocked = layout
    if "e" in region:
        start, stop = region["e"]
        out.append((base + start * size, base + stop * size, write, source))
    elif len(shape) == 4:
        _append_runs_4d(out, shape, region, base, size, blocked, write, source)
    elif "columns" in region and len(shape) == 2:
        low, high = region["columns"]
        row_bytes = shape[1] * size
        for row in range(shape[0]):
            address = base + row * row_bytes
            out.append((address + low * size, address + high * size, write, source))
    else:
        rows = region.get("c") or region.get("n") or (0, shape[0])
        row_bytes = math.prod(shape[1:]) * size
        out.append((base + rows[0] * row_bytes, base + rows[1] * row_bytes, write, source))


def _append_runs_4d(
    out: list[Range],
    shape: tuple[int, ...],
    region: Region,
    base: int,
    size: int,
    blocked: bool,
    write: bool,
    source: int,
) -> None:
    n, c, h, w = shape
    n0, n1 = region.get("n") or (0, n)
    c0, c1 = region.get("c") or (0, c)
    h0, h1 = region.get("h") or (0, h)
    if blocked:
        c0, c1, c = c0 // CHANNEL_BLOCK, -(-c1 // CHANNEL_BLOCK), -(-c // CHANNEL_BLOCK)
        unit = CHANNEL_BLOCK * size  # bytes of one pixel of one channel block
    else:
        unit = size  # bytes of one pixel of one channel
    row = w * unit
    plane = h * row
    if "samples" in region:  # sampled statistics: selected samples, maybe a patch of columns
        col0, col1 = region["cols"]
        for sample in region["samples"]:
            for channel in range(c0, c1):
                first = base + (sample * c + channel) * plane
                if col0 == 0 and col1 == w:  # whole rows: one run per sample and channel (block)
                    out.append((first + h0 * row, first + h1 * row, write, source))
                    continue
                for r in range(h0, h1):
                    out.append(
                        (
                            first + r * row + col0 * unit,
                            first + r * row + col1 * unit,
                            write,
                            source,
                        )
                    )
    elif h0 == 0 and h1 == h:
        if c0 == 0 and c1 == c:
            out.append((base + n0 * c * plane, base + n1 * c * plane, write, source))
        else:
            for sample in range(n0, n1):
                out.append(
                    (
                        base + (sample * c + c0) * plane,
                        base + (sample * c + c1) * plane,
                        write,
                        source,
                    )
                )
    else:
        length = (h1 - h0) * row
        offset = base + h0 * row
        for sample in range(n0, n1):
            for channel in range(c0, c1):
                first = offset + (sample * c + channel) * plane
                out.append((first, first + length, write, source))
