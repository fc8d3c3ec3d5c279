"""Turn a Schedule into tiles with FLOPs and address ranges: layout, tile sizes, tile accesses.

Every stored tensor gets a base address in one flat address space (page aligned). Activations use
the machine's library layout: nChw16c (channels padded to blocks of 16, each block's rows
contiguous) or nchw. Each kernel is cut into tiles by `bnsim.schedule.decompose`, the function
verification runs, with block sizes chosen as a CPU library shares a kernel among its threads
(`choose_blocks`). A tile lists, in op order, the byte ranges each op reads and writes, each tagged
with its op and tensor (its *source*), and the core cycles of its work. Tiles are generated lazily,
kernel by kernel. Imports bnsim.schedule, bnsim.footprint, bnsim.hw, bnsim.graph, bnsim.errors.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from bnsim.errors import ConfigError
from bnsim.footprint import Region, input_footprint, prologue_operand
from bnsim.graph.layer import Conv2d
from bnsim.hw import Machine
from bnsim.schedule import (
    FIXED_ELEMENT_BYTES,
    Box,
    ElementType,
    Kernel,
    Op,
    OpKind,
    Placement,
    Schedule,
    TensorRole,
    decompose,
)

CHANNEL_BLOCK = 16  # nChw16c
PAGE_BYTES = 4096
MIN_TILE_ELEMENTS = 4096  # 16 KiB of fp32
Fidelity = Literal["fast"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOptions:
    """How finely to simulate."""

    fidelity: Fidelity = "fast"
    tiles_per_core: int = 1  # tiles per core per kernel: finer tiles interleave cores more finely

    def check(self, machine: Machine) -> None:
        """Raises ConfigError if these options cannot simulate `machine`."""
        if self.tiles_per_core < 1:
            raise ConfigError(f"tiles per core must be ≥ 1, got {self.tiles_per_core}")


@dataclass(frozen=True, slots=True)
class Source:
    """Who an access belongs to: kernel index, op index within the kernel, tensor."""

    kernel: int
    op: int
    tensor: str


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile: its work, and the byte ranges it touches, in order."""

    compute_cycles: float
    flops: int
    accesses: tuple[tuple[int, int, bool, int], ...]  # (start, stop, is_write, source id)


@dataclass(frozen=True, slots=True)
class Reduction:
    """A tensor summed across tiles: combined after the kernel's tiles, then written once."""

    tensor: str
    source: int
    channel_axis_elements: int  # elements per unit of the kernel's c axis (0: not split by c)


class Trace:
    """The tiles of a schedule on a machine; tiles are generated lazily, one kernel at a time."""

    def __init__(self, schedule: Schedule, machine: Machine, options: SimOptions) -> None:
        options.check(machine)
        self.schedule = schedule
        self.machine = machine
        self.options = options
        self.data_bytes = machine.dtype_bytes()
        self.blocked = machine.compute.layout == "nChw16c"
        self.base, self.size = _lay_out(schedule, self, PAGE_BYTES)
        self.sources: list[Source] = []
        self._source_ids: dict[Source, int] = {}

    # --- layout --------------------------------------------------------------------------------

    def element_bytes(self, name: str) -> int:
        """Bytes per element of tensor `name`."""
        element = self.schedule.tensor(name).element
        return FIXED_ELEMENT_BYTES.get(element, self.data_bytes)

    def is_blocked(self, name: str) -> bool:
        """Whether `name` is stored nChw16c (4-D data activations, unless the library is nchw)."""
        tensor = self.schedule.tensor(name)
        return (
            self.blocked
            and len(tensor.shape) == 4
            and tensor.element is ElementType.DATA
            and tensor.role in _ACTIVATION_ROLES
        )

    def stored_bytes(self, name: str) -> int:
        """Bytes tensor `name` occupies in memory (channel padding included)."""
        shape = self.schedule.tensor(name).shape
        elements = math.prod(shape)
        if self.is_blocked(name):
            elements = elements // shape[1] * _padded(shape[1])
        return elements * self.element_bytes(name)

    def runs(self, name: str, region: Region) -> Iterator[tuple[int, int]]:
        """Byte ranges [start, stop) of a region of tensor `name`, merged where contiguous.

        4-D tensors take n, c, h bounds (for weights, n bounds the output channels); flat tensors
        take e bounds; 1-D tensors c (channels) or n (samples) bounds; 2-D tensors n (row) bounds.
        """
        tensor = self.schedule.tensor(name)
        base, size = self.base[name], self.element_bytes(name)
        shape = tensor.shape
        if "e" in region:
            start, stop = region["e"]
            yield base + start * size, base + stop * size
        elif len(shape) == 4:
            yield from _runs_4d(shape, region, base, size, self.is_blocked(name))
        elif "columns" in region and len(shape) == 2:
            low, high = region["columns"]
            row_bytes = shape[1] * size
            for row in range(shape[0]):
                yield base + row * row_bytes + low * size, base + row * row_bytes + high * size
        else:
            rows = region.get("c", region.get("n", (0, shape[0])))
            row_bytes = math.prod(shape[1:]) * size
            yield base + rows[0] * row_bytes, base + rows[1] * row_bytes

    def source(self, kernel: int, op: int, tensor: str) -> int:
        """Id of an attribution source (interned)."""
        key = Source(kernel, op, tensor)
        ident = self._source_ids.get(key)
        if ident is None:
            ident = self._source_ids[key] = len(self.sources)
            self.sources.append(key)
        return ident

    # --- tiles ---------------------------------------------------------------------------------

    def blocks(self, kernel: Kernel) -> dict[str, int]:
        """Block sizes per axis: how the kernel is cut into tiles (see module docstring)."""
        return choose_blocks(self.schedule, kernel, self.machine, self.options.tiles_per_core)

    def boxes(self, kernel: Kernel) -> tuple[Box, ...]:
        """The kernel's tiles as boxes of its iteration space, in dispatch order."""
        return decompose(kernel.space, self.blocks(kernel))

    def tiles(self, index: int) -> Iterator[Tile]:
        """The tiles of kernel `index`, in order."""
        kernel = self.schedule.kernels[index]
        main = kernel.main_op()
        volume = math.prod(axis.extent for axis in kernel.space)
        operands = {
            i: prologue_operand(kernel, i)
            for i, op in enumerate(kernel.ops)
            if op.placement is Placement.PROLOGUE
        }
        fused = len(kernel.ops) > 1
        for box in self.boxes(kernel):
            tile = {axis.name: bounds for axis, bounds in zip(kernel.space, box, strict=True)}
            share = math.prod(stop - start for start, stop in box) / volume
            accesses: list[tuple[int, int, bool, int]] = []
            cycles, flops = 0.0, 0
            produced: set[str] = set()
            for op_index, op in enumerate(kernel.ops):
                region = tile
                if op_index in operands:
                    region = input_footprint(self.schedule, main, tile, operands[op_index])
                work = share
                if op.attr("per_load") and op_index in operands:
                    work = _volume(region, self.schedule.tensor(op.reads[0]).shape) / math.prod(
                        self.schedule.tensor(op.reads[0]).shape
                    )
                cycles += self.compute_cycles(op, work, fused and op is main)
                flops += round(op.flops * work)
                self._op_accesses(index, op_index, op, main, tile, region, produced, accesses)
            yield Tile(compute_cycles=cycles, flops=flops, accesses=tuple(accesses))

    def compute_cycles(self, op: Op, share: float, fused_conv: bool) -> float:
        """Core cycles of `share` (0..1) of an op's work."""
        compute = self.machine.compute
        if op.kind.is_matrix():
            conv = op.kind in (OpKind.CONV_FWD, OpKind.CONV_BWD_DATA, OpKind.CONV_BWD_WEIGHT)
            efficiency = compute.conv_efficiency if conv else compute.fc_efficiency
            if fused_conv and conv:
                efficiency *= compute.fused_conv_factor
            return op.flops * share / (self.machine.cores.flops_per_cycle() * efficiency)
        per_element: float = getattr(compute.cycles_per_element, ELEMENTWISE_COST[op.kind])
        return op_elements(self.schedule, op) * share * per_element

    def _op_accesses(
        self,
        kernel_index: int,
        op_index: int,
        op: Op,
        main: Op,
        tile: Region,
        region: Region,
        produced: set[str],
        accesses: list[tuple[int, int, bool, int]],
    ) -> None:
        tensors = self.schedule.tensors
        reduced = set(op.reduces)
        for operand, name in enumerate(op.reads):
            if tensors[name].transient or name in produced:
                continue  # registers, or written by an earlier op of this tile (still in L1)
            operand_region = self._operand_region(op, main, operand, name, tile, region)
            ident = self.source(kernel_index, op_index, name)
            accesses.extend((a, b, False, ident) for a, b in self.runs(name, operand_region))
        for name in op.writes:
            produced.add(name)
            if tensors[name].transient or name in reduced:
                continue  # reduced tensors are written once, after the kernel's tiles
            ident = self.source(kernel_index, op_index, name)
            out_region = self._output_region(op, name, region)
            accesses.extend((a, b, True, ident) for a, b in self.runs(name, out_region))

    def _operand_region(
        self, op: Op, main: Op, operand: int, name: str, tile: Region, region: Region
    ) -> Region:
        """The region of operand `operand` (tensor `name`) that `op` reads in this tile."""
        if op is main and operand in _FOOTPRINT_OPERANDS.get(op.kind, ()):
            return input_footprint(self.schedule, op, tile, operand)
        if op.kind is OpKind.CONCAT_FWD:
            return _concat_part(self.schedule, op, operand, region)
        tensor = self.schedule.tensor(name)
        if tensor.role in _ACTIVATION_ROLES or op.kind is OpKind.SGD_UPDATE:
            return region
        if tensor.role in (TensorRole.WEIGHT, TensorRole.WEIGHT_GRADIENT):
            if len(tensor.shape) == 1:  # biases, BN scale and shift: the tile's channels
                return {"c": region["c"]} if "c" in region else {}
            if op.kind in (OpKind.CONV_FWD, OpKind.FC_FWD):  # the weight rows of the tile's outputs
                return {"n": region["c"]}
            if op.kind is OpKind.FC_BWD_DATA:  # the weight columns of the tile's inputs
                return {"columns": region["c"]}
            return {}
        if tensor.role is TensorRole.BN_STATISTICS:
            return {"c": region["c"]} if "c" in region else {}
        if len(tensor.shape) == 4:  # max-pool indices, dropout masks: like the activation
            return region
        return {"n": region["n"]} if "n" in region else {}  # labels, log-probabilities

    def _output_region(self, op: Op, name: str, region: Region) -> Region:
        if op.kind is OpKind.CONCAT_BWD:
            position = op.writes.index(name)
            return _concat_part(
                self.schedule, op, op.attr("slices")[position], region, forward=False
            )
        return region

    def reductions(self, index: int) -> tuple[Reduction, ...]:
        """The kernel's cross-tile sums: what the simulator combines after its tiles."""
        kernel = self.schedule.kernels[index]
        found = []
        for op_index, op in enumerate(kernel.ops):
            for name in op.reduces:
                if self.schedule.tensor(name).transient:
                    continue
                shape = self.schedule.tensor(name).shape
                per_channel = math.prod(shape[1:]) if len(shape) > 1 else 1
                if op.kind is OpKind.LOSS_FWD:
                    per_channel = 0
                found.append(
                    Reduction(
                        tensor=name,
                        source=self.source(index, op_index, name),
                        channel_axis_elements=per_channel,
                    )
                )
        return tuple(found)


_ACTIVATION_ROLES = (
    TensorRole.ACTIVATION,
    TensorRole.STASHED_ACTIVATION,
    TensorRole.ACTIVATION_GRADIENT,
)
# operands of main ops read through the tile's input footprint
_FOOTPRINT_OPERANDS: dict[OpKind, tuple[int, ...]] = {
    OpKind.CONV_FWD: (0,),
    OpKind.CONV_BWD_DATA: (0,),
    OpKind.CONV_BWD_WEIGHT: (0, 1),
    OpKind.FC_FWD: (0,),
    OpKind.FC_BWD_DATA: (0,),
    OpKind.FC_BWD_WEIGHT: (0, 1),
    OpKind.POOL_FWD: (0,),
    OpKind.POOL_BWD: (0, 1),
}

ELEMENTWISE_COST: dict[OpKind, str] = {
    OpKind.BN_STATS: "bn_stats",
    OpKind.BN_APPLY: "bn_apply",
    OpKind.BN_GRAD_REDUCE: "bn_grad_reduce",
    OpKind.BN_GRAD_APPLY: "bn_grad_apply",
    OpKind.RELU_FWD: "relu_fwd",
    OpKind.RELU_BWD: "relu_bwd",
    OpKind.POOL_FWD: "pool_fwd",
    OpKind.POOL_BWD: "pool_bwd",
    OpKind.CONCAT_FWD: "concat",
    OpKind.CONCAT_BWD: "concat",
    OpKind.ADD_FWD: "add",
    OpKind.GRAD_ACCUMULATE: "add",
    OpKind.DROPOUT_FWD: "dropout",
    OpKind.DROPOUT_BWD: "dropout",
    OpKind.LOSS_FWD: "loss",
    OpKind.LOSS_BWD: "loss",
    OpKind.SGD_UPDATE: "sgd_update",
}


def op_elements(schedule: Schedule, op: Op) -> int:
    """Elements an element-wise op processes (what `cycles_per_element` is per)."""
    if op.kind in (
        OpKind.POOL_FWD,
        OpKind.BN_STATS,
        OpKind.LOSS_FWD,
        OpKind.LOSS_BWD,
        OpKind.SGD_UPDATE,
        OpKind.CONCAT_BWD,
        OpKind.POOL_BWD,
    ):
        name = op.reads[0] if op.kind is not OpKind.POOL_BWD else op.writes[0]
        return schedule.tensor(name).num_elements()
    return schedule.tensor(op.writes[0]).num_elements()


def choose_blocks(
    schedule: Schedule, kernel: Kernel, machine: Machine, tiles_per_core: int = 1
) -> dict[str, int]:
    """Block sizes per axis, as a CPU library shares a kernel among its threads.

    About `cores × tiles_per_core` tiles, none with less than MIN_TILE_ELEMENTS of the main op's
    largest tensor: whole samples first, then blocks of 16 channels, then rows. A convolution's tile
    keeps to the output channels whose weights fit in half the private cache (its weights stay there
    while the tile streams). Weight-gradient kernels split samples when the gradient fits in half
    the private cache (partial sums per thread), else channels, so that each thread owns whole
    channel blocks of the gradient. Fully connected kernels split their channels.
    """
    main = kernel.main_op()
    extents = {axis.name: axis.extent for axis in kernel.space}
    # no tile smaller than MIN_TILE_ELEMENTS of its largest tensor: splitting tiny tensors costs
    # more than it shares
    largest = max(schedule.tensor(name).num_elements() for name in (*main.reads, *main.writes))
    target = max(1, min(machine.cores.count * tiles_per_core, largest // MIN_TILE_ELEMENTS))
    if "e" in extents:
        return {"e": -(-extents["e"] // target)}
    if main.kind in (OpKind.LOSS_FWD, OpKind.LOSS_BWD):
        return {"n": extents["n"]}
    channel_limit = extents.get("c", 1)
    layer = schedule.network.layer(main.layer)
    if main.kind in (OpKind.CONV_FWD, OpKind.CONV_BWD_DATA) and isinstance(layer, Conv2d):
        weight_bytes = schedule.tensor(main.reads[1]).num_bytes(machine.dtype_bytes())
        per_channel = weight_bytes / extents["c"]
        budget = machine.private_caches()[-1].size_bytes / 2
        channel_limit = max(
            CHANNEL_BLOCK, int(budget / per_channel) // CHANNEL_BLOCK * CHANNEL_BLOCK
        )
    order = ["n", "c", "h"]
    if main.kind in (OpKind.FC_FWD, OpKind.FC_BWD_DATA):
        order = ["c", "n", "h"]
    if main.kind in (OpKind.CONV_BWD_WEIGHT, OpKind.FC_BWD_WEIGHT):
        # small gradients: threads split samples and keep private partial sums (combined at the
        # end);
        # large ones: threads split output channels, each reading all samples
        gradient = schedule.tensor(main.writes[0]).num_bytes(machine.dtype_bytes())
        if gradient > machine.private_caches()[-1].size_bytes / 2:
            order = ["c", "n", "h"]
    blocks: dict[str, int] = {}
    remaining = target
    for axis in order:
        if axis not in extents:
            continue
        extent = extents[axis]
        unit = CHANNEL_BLOCK if axis == "c" and extent >= CHANNEL_BLOCK else 1
        units = -(-extent // unit)
        pieces = min(units, max(1, remaining))
        if axis == "c":
            pieces = max(pieces, -(-extent // channel_limit))
        block = -(-units // pieces) * unit
        blocks[axis] = min(block, extent)
        remaining = -(-remaining // -(-extent // blocks[axis]))
    return blocks


def _padded(channels: int) -> int:
    return -(-channels // CHANNEL_BLOCK) * CHANNEL_BLOCK


def _volume(region: Region, shape: tuple[int, ...]) -> int:
    axes = ("n", "c", "h", "w")
    return math.prod(
        (region[axis][1] - region[axis][0]) if axis in region else extent
        for axis, extent in zip(axes, shape, strict=False)
    )


def _runs_4d(
    shape: tuple[int, ...], region: Region, base: int, size: int, blocked: bool
) -> Iterator[tuple[int, int]]:
    n, c, h, w = shape
    n0, n1 = region.get("n", (0, n))
    c0, c1 = region.get("c", (0, c))
    h0, h1 = region.get("h", (0, h))
    if blocked:
        c0, c1, c, unit = (
            c0 // CHANNEL_BLOCK,
            -(-c1 // CHANNEL_BLOCK),
            -(-c // CHANNEL_BLOCK),
            (CHANNEL_BLOCK * size),
        )
    else:
        unit = size
    row = w * unit  # bytes of one row of one channel (block)
    plane = h * row
    if (h0, h1) == (0, h):
        if (c0, c1) == (0, c):
            yield base + n0 * c * plane, base + n1 * c * plane
            return
        for sample in range(n0, n1):
            yield base + (sample * c + c0) * plane, base + (sample * c + c1) * plane
        return
    for sample in range(n0, n1):
        for channel in range(c0, c1):
            start = base + (sample * c + channel) * plane + h0 * row
            yield start, start + (h1 - h0) * row


def _concat_part(
    schedule: Schedule, op: Op, position: int, region: Region, *, forward: bool = True
) -> Region:
    """The region of concatenation part `position` that a region of the whole covers."""
    layer = schedule.network.layer(op.layer)
    offset = 0
    for index, source in enumerate(layer.inputs):
        channels = schedule.network.out_shape(source).c
        if index == position:
            start, stop = region.get("c", (0, 1 << 62))
            low, high = max(start, offset), min(stop, offset + channels)
            if low >= high:
                return {**region, "c": (0, 0)}
            return {**region, "c": (low - offset, high - offset)}
        offset += channels
    raise AssertionError(f"concat {op.layer} has no part {position} ({forward=})")


def _lay_out(schedule: Schedule, trace: Trace, alignment: int) -> tuple[Mapping[str, int], int]:
    """Base address of every stored tensor (in order of creation), and the bytes of them all."""
    base: dict[str, int] = {}
    address = alignment
    for name, tensor in schedule.tensors.items():
        if tensor.transient:
            continue
        base[name] = address
        address += -(-trace.stored_bytes(name) // alignment) * alignment
    return base, address
