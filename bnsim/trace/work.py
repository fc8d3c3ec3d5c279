"""What a trace hands the simulator: who an access belongs to (Source), a box of a core's work and
its streams (BoxWork), a tensor summed across tiles (Reduction), and each op's per-kernel plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from bnsim.trace._tiles import (
    Layout,
    Stream,
)
from bnsim.trace.regions import (
    RegionRule,
)


@dataclass(frozen=True, slots=True)
class Source:
    """Who an access belongs to: kernel index, op index within the kernel, tensor."""

    kernel: int
    op: int
    tensor: str


class BoxWork(NamedTuple):
    """One box of a core's share of a kernel: its work, and its accesses as streams.

    A tuple, not a dataclass: an iteration builds tens of thousands, and a tuple is built in a third
    of the time. The simulator runs the box in `steps` steps, each issuing an equal share of every
    stream (bnsim.trace._tiles.stream_ranges).
    """

    compute_cycles: float
    flops: int
    steps: int
    streams: tuple[Stream, ...]


@dataclass(frozen=True, slots=True)
class Reduction:
    """A tensor summed across tiles: combined after the kernel's tiles, then written once."""

    tensor: str
    source: int
    channel_axis_elements: int  # elements per unit of the kernel's c axis (0: not split by c)
    # the threads holding partial sums share the combine (weight gradients: oneDNN splits the
    # gradient's blocks over them, a GPU runs a split-K reduction kernel); else one thread does it
    parallel: bool = False


class _Access(NamedTuple):
    """One tensor an op reads or writes, as every tile of its kernel does (a tuple: see _tiles)."""

    region: RegionRule | None  # None: the op's own region
    layout: Layout
    kind: int  # READ, or how a store reaches memory (bnsim.trace.dataflow: FETCH, STREAM, ALLOCATE)
    source: int


class _Step(NamedTuple):
    """One op of a kernel, as every tile runs it (a tuple: bnsim.trace._tiles unpacks it)."""

    cycles: float  # core cycles of the whole op
    flops: int
    operand: int | None  # for prologue ops: the main-op input they produce
    shape: tuple[int, ...]  # of the op's first input
    per_load_elements: int  # nonzero: work follows the footprint (recomputed on every load)
    accesses: tuple[_Access, ...]
    # main op: (operand, layout, source) of stored prologue outputs it re-reads where an earlier
    # box of the same thread produced them
    rereads: tuple[tuple[int, Layout, int], ...]
    # ≥ 0: only boxes that start at 0 along this axis store the op's outputs (the first
    # output-channel tile of a prologue that runs on every load); -1: every box stores
    store_axis: int
