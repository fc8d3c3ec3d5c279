"""How the machine's kernel library shares a kernel's work among threads, and in what order each
thread walks its share.

`split_work(schedule, kernel, machine)` returns a WorkSplit: per core (a CPU thread, a GPU SM) the
boxes of the kernel's iteration space it runs, in the order it runs them. The split is the library's
(`compute.library`): `onednn` follows MKL-DNN's AVX-512 drivers as the BNFF kernels ran them
(bnsim.trace.dataflow.onednn), or on channels-last activations (`compute.layout: nhwc`) oneDNN v3's
brgemm convolutions and ATen's kernels (bnsim.trace.dataflow.nhwc); `cudnn` follows the
implicit-GEMM tiling and rasterization of NVIDIA's public CUTLASS library
(bnsim.trace.dataflow.cudnn). Both interpreters read the same split: the simulator times its boxes,
the NumPy executor runs them. The library also decides how stores reach memory (`store_kind`), how
often a kernel's loop order reads its input (`input_passes`) and where a fused prologue works
(`prologue_on_every_load`). docs/model.md cites the sources of every rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bnsim.config.machine import Machine
from bnsim.schedule import Box, Kernel, OpKind, Schedule

CHANNEL_BLOCK = 16  # nChw16c: oneDNN's channel block, and the unit every split keeps to
# the kernels (by main op) whose loop order may read an operand in several passes
# (`input_passes`, `weight_passes`); every other kernel reads each operand once
PASS_KINDS = frozenset((OpKind.CONV_FWD, OpKind.CONV_BWD_DATA, OpKind.FC_FWD, OpKind.FC_BWD_DATA))

# How a store reaches memory (the access kinds of bnsim.trace._tiles streams; 0 is a read):
FETCH = 1  # an ordinary store: a line it misses is read first (read for ownership)
STREAM = 2  # a non-temporal store: bypasses the caches, written straight to DRAM
ALLOCATE = 3  # a store that allocates its line without reading it (a GPU's sectored L2)


@dataclass(frozen=True, slots=True)
class WorkSplit:
    """One kernel's work: per core, its boxes in loop order.

    `dynamic`: the boxes are dealt to the cores in launch order as the cores free up (a GPU's block
    scheduler hands the next CTA to the next free SM), and `threads` deals them round-robin, which
    is what that gives for equal boxes; otherwise each core runs exactly its boxes (OpenMP's static
    schedule).
    """

    threads: tuple[tuple[Box, ...], ...]
    dynamic: bool = False

    def launch_order(self) -> tuple[Box, ...]:
        """The boxes in the order a dynamic scheduler hands them out: the threads' round-robin."""
        longest = max((len(thread) for thread in self.threads), default=0)
        return tuple(
            thread[turn] for turn in range(longest) for thread in self.threads if turn < len(thread)
        )

    def boxes(self) -> tuple[Box, ...]:
        """Every box, core by core."""
        return tuple(box for thread in self.threads for box in thread)


def split_work(
    schedule: Schedule, kernel: Kernel, machine: Machine, *, wave_bytes: int = 1 << 18
) -> WorkSplit:
    """The library's split of `kernel` over the machine's cores.

    `wave_bytes` only matters for libraries that deal small blocks round-robin over the cores (a
    GPU's element-wise kernels): consecutive blocks are grouped into waves of about that many bytes
    per core, the finest grain bnsim simulates; it is a simulation parameter, not the library's.
    """
    # a split follows from the network, the kernel and the machine alone, and most kernels recur
    # in every scheme's schedule: splits are remembered across schedules
    network = schedule.network
    # networks hash their layers (slow): they are told apart by identity, and kept alive with
    # their splits so that an identity is never reused while remembered
    remembered = _SPLITS.get(id(network))
    if remembered is None or remembered[0] is not network:
        if len(_SPLITS) >= MAX_REMEMBERED_NETWORKS:
            _SPLITS.clear()
        remembered = _SPLITS[id(network)] = (network, {})
    splits = remembered[1]
    key = (kernel, machine, wave_bytes)
    known = splits.get(key)
    if known is not None:
        return known
    if machine.compute.library == "cudnn":
        from bnsim.trace.dataflow import cudnn  # noqa: PLC0415 (one library per machine)

        work = cudnn.split(schedule, kernel, machine, wave_bytes)
    elif machine.compute.layout == "nhwc":
        from bnsim.trace.dataflow import nhwc  # noqa: PLC0415

        work = nhwc.split(schedule, kernel, machine)
    else:
        from bnsim.trace.dataflow import onednn  # noqa: PLC0415

        work = onednn.split(schedule, kernel, machine)
    if len(splits) >= MAX_REMEMBERED_SPLITS:
        splits.clear()
    splits[key] = work
    return work


MAX_REMEMBERED_NETWORKS = 16
MAX_REMEMBERED_SPLITS = 20_000  # per network: a few machines' worth of one network's kernels
_SPLITS: dict[int, tuple[object, dict[tuple[object, ...], WorkSplit]]] = {}


def store_kind(schedule: Schedule, kernel: Kernel, op_index: int, machine: Machine) -> int:
    """How op `op_index` of `kernel` stores its outputs: FETCH, STREAM or ALLOCATE, as the
    library does (`compute.nontemporal_stores: always` makes every store STREAM)."""
    if machine.compute.nontemporal_stores == "always":
        return STREAM
    if machine.compute.nontemporal_stores == "never":
        return FETCH
    if machine.compute.library == "cudnn":
        return ALLOCATE
    if machine.compute.layout == "nhwc":
        return FETCH  # brgemm convolutions and ATen's kernels store normally
    from bnsim.trace.dataflow import onednn  # noqa: PLC0415

    return onednn.store_kind(schedule, kernel, op_index)


def kernel_store_kinds(schedule: Schedule, kernel: Kernel, machine: Machine) -> list[int]:
    """`store_kind` of each op of `kernel`."""
    if _uniform_stores(machine):
        return [store_kind(schedule, kernel, 0, machine)] * len(kernel.ops)
    from bnsim.trace.dataflow import onednn  # noqa: PLC0415

    return onednn.kernel_store_kinds(schedule, kernel)


def store_kinds(schedule: Schedule, machine: Machine) -> list[int]:
    """`store_kind` of every op of the schedule, kernel by kernel (one pass)."""
    count = sum(len(kernel.ops) for kernel in schedule.kernels)
    if _uniform_stores(machine):
        return [store_kind(schedule, schedule.kernels[0], 0, machine)] * count if count else []
    from bnsim.trace.dataflow import onednn  # noqa: PLC0415

    return [
        kind for kernel in schedule.kernels for kind in onednn.kernel_store_kinds(schedule, kernel)
    ]


def _uniform_stores(machine: Machine) -> bool:
    """Whether every op of every kernel stores the same way on `machine`."""
    compute = machine.compute
    return (
        compute.nontemporal_stores != "library"
        or compute.library == "cudnn"
        or compute.layout == "nhwc"
    )


def prologue_on_every_load(machine: Machine) -> bool:
    """Whether a fused prologue (bnff's normalize + ReLU in front of a convolution) transforms
    every tile it loads, in registers, and its stored output is written by the boxes of the first
    output-channel tile only (`cudnn`: CUTLASS's mainloop fusion applies a per-channel
    scale-bias-ReLU to each activation tile a CTA loads, in every CTA); else it works at each
    thread's first touch of an element and the main op re-reads the stored result (`onednn`: the
    BNFF kernels' `coff == 0` test)."""
    return machine.compute.library == "cudnn"


def input_passes(schedule: Schedule, kernel: Kernel, machine: Machine) -> int:
    """How many times the library's loop order reads the main op's input (1 for most kernels):
    MKL-DNN's direct convolutions read an image's whole input once per 16-channel block of their
    output (backward-data: of their input gradient); whether the later passes hit in a cache is
    the simulation's to find. CUTLASS's launch order reads it once per swizzle strip of N-tiles."""
    if machine.compute.library == "cudnn":
        from bnsim.trace.dataflow import cudnn  # noqa: PLC0415

        return cudnn.input_passes(kernel)
    if _brgemm_convolution(schedule, kernel, machine):
        from bnsim.trace.dataflow import nhwc  # noqa: PLC0415

        return nhwc.input_passes(schedule, kernel)
    from bnsim.trace.dataflow import onednn  # noqa: PLC0415

    return onednn.input_passes(schedule, kernel)


def weight_passes(schedule: Schedule, kernel: Kernel, machine: Machine) -> tuple[int, int]:
    """How the library's loop order reads the main op's weights, as (passes, strips): the weights
    fall into `strips` equal parts, each read `passes` times one after the other; whether a
    cache serves the later passes is the simulation's to find. CUTLASS: each wave of CTAs reads
    its swizzle strip's weights; MKL-DNN's direct convolutions in image-major order: each image
    reads every channel block's weights."""
    if machine.compute.library == "cudnn":
        from bnsim.trace.dataflow import cudnn  # noqa: PLC0415

        return cudnn.weight_passes(schedule, kernel, machine)
    if _brgemm_convolution(schedule, kernel, machine):
        from bnsim.trace.dataflow import nhwc  # noqa: PLC0415

        return nhwc.weight_passes(schedule, kernel, machine.cores.count), 1
    from bnsim.trace.dataflow import onednn  # noqa: PLC0415

    return onednn.weight_passes(schedule, kernel), 1


def input_order_is_channel_outer(schedule: Schedule, kernel: Kernel, machine: Machine) -> bool:
    """Whether the passes over a kernel's input run over the whole batch each (channel blocks
    outermost) rather than image by image."""
    if machine.compute.library == "cudnn":
        return True
    if _brgemm_convolution(schedule, kernel, machine):
        return False  # images outermost in both of its loop orders
    from bnsim.trace.dataflow import onednn  # noqa: PLC0415

    return onednn.channel_outer(schedule, kernel)


def _brgemm_convolution(schedule: Schedule, kernel: Kernel, machine: Machine) -> bool:
    """Whether oneDNN runs `kernel` as a brgemm convolution on channels-last activations."""
    if machine.compute.layout != "nhwc" or kernel.main_op().kind not in _CONV_DATA_KINDS:
        return False
    from bnsim.trace.dataflow import nhwc  # noqa: PLC0415

    return nhwc.brgemm_layer(schedule, kernel)


_CONV_DATA_KINDS = frozenset((OpKind.CONV_FWD, OpKind.CONV_BWD_DATA))


def balance211(count: int, threads: int) -> list[range]:
    """Contiguous shares of `count` items: the first `count % threads` threads get one more
    (MKL-DNN's balance211, and OpenMP's static schedule).

    >>> balance211(10, 4)
    [range(0, 3), range(3, 6), range(6, 8), range(8, 10)]
    """
    base, extra = divmod(count, threads)
    shares, start = [], 0
    for thread in range(threads):
        size = base + (1 if thread < extra else 0)
        shares.append(range(start, start + size))
        start += size
    return shares


def linear_boxes(extents: Sequence[int], start: int, stop: int) -> list[Box]:
    """A range [start, stop) of the row-major linear index over `extents` as few boxes.

    >>> linear_boxes((2, 3), 1, 5)
    [((0, 1), (1, 3)), ((1, 2), (0, 2))]
    """
    if start >= stop:
        return []
    if len(extents) == 1:
        return [((start, stop),)]
    inner = math.prod(extents[1:])
    first, first_rest = divmod(start, inner)
    last, last_rest = divmod(stop, inner)
    if first == last:
        return [
            ((first, first + 1), *box) for box in linear_boxes(extents[1:], first_rest, last_rest)
        ]
    boxes: list[Box] = []
    if first_rest:
        boxes += [
            ((first, first + 1), *box) for box in linear_boxes(extents[1:], first_rest, inner)
        ]
        first += 1
    if last > first:
        boxes.append(((first, last), *((0, extent) for extent in extents[1:])))
    if last_rest:
        boxes += [((last, last + 1), *box) for box in linear_boxes(extents[1:], 0, last_rest)]
    return boxes


def blocks_of(extent: int, unit: int) -> int:
    """Units of `unit` elements that cover `extent` (the last one may be partial)."""
    return -(-extent // unit)


def scaled(box: Box, units: Sequence[int], extents: Sequence[int]) -> Box:
    """A box in units (e.g. channel blocks) as a box in elements, clipped to the extents."""
    return tuple(
        (start * unit, min(stop * unit, extent))
        for (start, stop), unit, extent in zip(box, units, extents, strict=True)
    )


def memory_order_split(
    kernel: Kernel, threads: int, units: dict[str, int] | None = None
) -> WorkSplit:
    """Contiguous shares of the kernel's space in its axis order (row-major, blocks of `units`
    elements per axis): how an element-wise kernel walks a tensor in memory order."""
    units = units or {}
    names = [axis.name for axis in kernel.space]
    extents = [axis.extent for axis in kernel.space]
    sizes = [units.get(name, 1) for name in names]
    counts = [blocks_of(extent, size) for extent, size in zip(extents, sizes, strict=True)]
    shares = balance211(math.prod(counts), threads)
    boxes = tuple(
        tuple(scaled(box, sizes, extents) for box in linear_boxes(counts, share.start, share.stop))
        for share in shares
    )
    return WorkSplit(boxes)
